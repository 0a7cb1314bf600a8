"""Typed checks of the config before any work: unknown keys, missing values, wrong types and ranges.

Every key must be read by something: the top-level keys are `TopLevel`'s fields and the nodes; the
schema of a node is the signature of its `_target_` (keyword names, annotations with their choices and
bounds, see `prunelab.hints`; required arguments), so every option of a group is checked without a second
registry; nested `_target_` nodes (e.g. `pruning.criterion`) are checked the same way. Schemas read once are
kept in the schema cache (`schema_cache`), so later commands check a node without importing its module. Ranges
that depend on several settings are checked by the built objects themselves (`Schedule`, `datamodule.check()`,
the pruner), also before training.
"""

import collections.abc
import importlib
import inspect
import os
import sys
import sysconfig
from dataclasses import dataclass, fields
from typing import Literal

from hydra._internal.utils import _locate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationKeyError

from prunelab import hints
from prunelab.errors import ConfigError
from prunelab.keys import GROUPS, LABELS
from prunelab.runs import schema_cache
from prunelab.runs.threads import check_setting as check_threads


@dataclass
class TopLevel:
    """The top-level settings that are not nodes of a group."""

    seed: int
    dense_checkpoint: str | None
    store_dir: str | None
    cache: bool
    rerun: bool
    export_onnx: bool
    threads: int | str
    channels_last: bool
    save_model: bool | Literal["state"]


# Nodes built from their own `_target_`, checked against its signature, with the keywords the run passes
# itself; `metrics` are Meter's keywords.
NODES = {**{group: () for group in GROUPS}, "trainer": (), "optimizer": (), "scheduler": (),
         "logger": ("save_dir", "run_config")}
METRICS = "prunelab.training.meter.Meter"
TASK = "prunelab.tasks.task"  # the `task` node holds its keywords
TOP_LEVEL = (*(f.name for f in fields(TopLevel)), *NODES, "metrics", "task", "hydra")
# Every node, by what checking it imports (its `_target_`'s module) when its schema is not cached: the schedule
# nothing, these torch, the last Lightning (seconds; `task` through `task.module`). The run checks cached nodes
# first, then these in this order, each group's values before the next group's keys, so that a bad setting
# answers before the imports it does not need.
NO_TORCH_NODES = ("schedule",)
TORCH_NODES = ("model", "pruning", "recovery", "optimizer", "scheduler", "metrics")
LIGHTNING_NODES = ("trainer", "logger", "task", "dataset")


def parameters(target) -> tuple[dict[str, inspect.Parameter], bool]:
    """The keyword parameters `target` takes (a class: its constructor's), annotations resolved where possible;
    and whether it takes any key (`**kwargs`)."""
    try:
        sig = inspect.signature(target, eval_str=True)
    except (NameError, TypeError, ValueError):
        sig = inspect.signature(target)
    named = {n: p for n, p in sig.parameters.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return named, any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())


def schema_of(target) -> dict:
    """The settings `target` takes as plain JSON: `params` (each one's encoded hint and whether it is required)
    and `any_key` (it takes `**kwargs`)."""
    named, any_key = parameters(target)
    params = {n: {"hint": "any" if p.annotation is p.empty else hints.encode(p.annotation),
                  "required": p.default is p.empty} for n, p in named.items()}
    return {"params": params, "any_key": any_key}


def schema(target: str, setting: str) -> dict:
    """The schema of the `_target_` named `target`: from the schema cache, else read from its signature (importing
    its module) and cached; a ConfigError naming `setting` when it does not import."""
    found = schema_cache.read(target)
    if found is not None:
        return found
    try:
        built = _locate(target)
    except Exception:  # noqa: BLE001 - any import failure: say which module, where it was looked for
        raise ConfigError(setting, *import_problem(target)) from None
    found = schema_of(built)
    schema_cache.write(target, found)
    return found


def targets(node: dict):
    """The `_target_`s of `node` and of the nodes it holds."""
    if "_target_" in node:
        yield str(node["_target_"])
    for value in node.values():
        if isinstance(value, dict):
            yield from targets(value)


def cached(plain: dict, name: str) -> bool:
    """Whether checking the node `name` of the plain config needs no import: every schema it reads is cached."""
    node = {"metrics": {"_target_": METRICS}, "task": {"_target_": TASK}}.get(name, plain.get(name))
    return isinstance(node, dict) and all(schema_cache.read(t) is not None for t in targets(node))


def search_path() -> list[str]:
    """Where Python looks for a `_target_`'s package: `sys.path` without the standard library."""
    stdlib = sysconfig.get_path("stdlib")
    found = (os.path.abspath(entry or os.curdir) for entry in sys.path)
    return [p for p in found if os.path.isdir(p) and ("site-packages" in p or not p.startswith(stdlib))]


def import_problem(target: str) -> tuple[str, str]:
    """(problem, fix) for a `_target_` that does not import: the missing module and the search path, the
    missing name, or what importing the module raised."""
    module, _, name = target.rpartition(".")
    if not module:
        return f"cannot import {target!r}: not a dotted path", "give module.name, e.g. my_methods.MyCriterion"
    try:
        found = importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name is None or not module.startswith(err.name):
            raise
        return (f"cannot import {target!r}: no module {err.name!r} on Python's search path {search_path()}",
                "check the spelling; run prunelab from the folder that holds the package, pip install it, "
                "or add its folder to PYTHONPATH")
    except Exception as err:  # noqa: BLE001 - the user's module itself fails: say how
        return (f"cannot import {target!r}: importing {module!r} raised {type(err).__name__}: {err}",
                f"fix {module!r} so that `import {module}` works")
    names = sorted(n for n, v in vars(found).items() if callable(v) and getattr(v, "__module__", None) == module)
    return f"cannot import {target!r}: module {module!r} has no {name!r}", f"use one of {names}"


def check_node(path: str, node: dict, target: str | None = None, given: tuple = ()) -> None:
    """Raise a ConfigError for the first key of `node` its `_target_` (or `target`) does not take, or of the
    wrong type or range. `given`: the keywords the code passes itself."""
    target = str(target or node["_target_"])
    found = schema(target, f"{path}._target_")
    params = found["params"]
    for key, value in node.items():
        setting = f"{path}.{key}"
        if key.startswith("_") or key in LABELS:
            continue
        if key not in params:
            if found["any_key"]:
                continue
            raise ConfigError(setting, f"is not a setting of {target}", f"remove it; the settings are {sorted(params)}")
        if isinstance(value, dict) and "_target_" in value:
            check_node(setting, value)
        elif problem := hints.misfit(setting, value, params[key]["hint"]):
            raise ConfigError(setting, *problem)
    missing = [n for n, p in params.items() if p["required"] and n not in node and n not in given]
    if missing and not node.get("_partial_"):
        raise ConfigError(f"{path}.{missing[0]}", "is required and not set", f"set {path}.{missing[0]}=<value>")


def _missing(plain: dict, prefix: str = ""):
    """Dotted paths of the mandatory values (`???`) left unset."""
    for key, value in plain.items():
        if value == "???":
            yield f"{prefix}{key}"
        elif isinstance(value, dict):
            yield from _missing(value, f"{prefix}{key}.")


def check_settings(cfg: DictConfig) -> dict:
    """Check what `cfg` holds besides its nodes' keys: no value left unset, interpolations that resolve, no
    top-level key that nothing reads, the top-level settings' types; returns the resolved plain config."""
    missing = next(_missing(OmegaConf.to_container(cfg, resolve=False)), None)
    if missing:
        raise ConfigError(missing, "has no value (???)", f"set {missing}=<value>")
    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
    except InterpolationKeyError as err:  # e.g. an image model's ${dataset.input_shape} with dataset=text
        raise ConfigError(err.full_key, str(err.msg).splitlines()[0].lower(),
                          "choose groups that go together: an image model with an image dataset, a language model "
                          "with dataset=text") from None
    unknown = [key for key in plain if key not in TOP_LEVEL]
    if unknown:
        raise ConfigError(unknown[0], "is not a setting of prunelab",
                          f"remove it; the top-level settings are {sorted(TOP_LEVEL)}")
    for f in fields(TopLevel):
        if f.name in plain and (problem := hints.misfit(f.name, plain[f.name], hints.encode(f.type))):
            raise ConfigError(f.name, *problem)
    check_threads(plain["threads"])
    return plain


def check_nodes(plain: dict, names: collections.abc.Iterable[str]) -> None:
    """Check the keys of the named nodes of the plain config (`metrics` and `task` included), in order."""
    for name in names:
        if name == "metrics":
            check_node("metrics", plain.get("metrics") or {}, METRICS)
        elif name == "task":
            check_node("task", plain.get("task") or {}, TASK)
        elif isinstance(plain.get(name), dict):
            check_node(name, plain[name], given=NODES[name])


def check(cfg: DictConfig) -> None:
    """Check the top-level settings and every node of `cfg`: no key that nothing reads, each of the right type;
    one ConfigError for the first problem."""
    check_nodes(check_settings(cfg), NO_TORCH_NODES + TORCH_NODES + LIGHTNING_NODES)
