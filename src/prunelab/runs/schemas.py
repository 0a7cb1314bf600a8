"""Typed checks of the config before any work: unknown keys, missing values and wrong types.

The schema of a group node is the signature of its `_target_` (keyword names, annotations,
required arguments), so every option of a group is checked without a second registry; nested
`_target_` nodes (e.g. `pruning.criterion`) are checked the same way. Ranges are checked by the
built objects themselves (`Schedule`, `datamodule.check()`, the pruner), also before training.
"""

import collections.abc
import inspect
import types
import typing
from dataclasses import dataclass, fields
from typing import Literal, Union

from hydra._internal.utils import _locate
from omegaconf import DictConfig, OmegaConf

from prunelab.errors import ConfigError
from prunelab.keys import GROUPS, LABELS
from prunelab.runs.threads import check_setting as check_threads

SEQUENCES = (list, tuple, collections.abc.Sequence)


@dataclass
class TopLevel:
    """The top-level settings that are not nodes of a group."""

    seed: int
    dense_checkpoint: str | None
    store_dir: str | None
    cache: bool
    rerun: bool
    threads: int | str
    save_model: bool | Literal["state"]


def describe(hint) -> str:
    """`hint` in words, for messages."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin is Literal:
        return f"one of {list(args)}"
    if hint in SEQUENCES or origin in SEQUENCES:
        plural = {bool: "booleans", int: "integers", float: "numbers", str: "strings"}
        return f"a list of {plural.get(args[0], 'values') if args else 'values'}"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def fits(value, hint) -> bool:
    """Whether a plain config value has the annotated type (hints it cannot judge pass)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return any(fits(value, a) for a in args)
    if origin is Literal:
        return value in args
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint in (int, float, str):
        ok = (int, float) if hint is float else hint
        return isinstance(value, ok) and not isinstance(value, bool)
    if hint in SEQUENCES or origin in SEQUENCES:
        return isinstance(value, (list, tuple)) and all(fits(v, args[0]) for v in value if args and args[0] is not ...)
    return True


def _signature(func) -> tuple[dict[str, inspect.Parameter], bool]:
    """Named parameters of `func` (annotations resolved where possible) and whether it takes `**kwargs`."""
    try:
        sig = inspect.signature(func, eval_str=True)
    except (NameError, TypeError, ValueError):
        sig = inspect.signature(func)
    named = {n: p for n, p in sig.parameters.items()
             if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and n != "self"}
    return named, any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())


def parameters(target) -> tuple[dict[str, inspect.Parameter], bool]:
    """The keyword parameters `target` takes, following a class's `**kwargs` into its bases; and whether any key goes."""
    if not isinstance(target, type):
        return _signature(target)
    found: dict[str, inspect.Parameter] = {}
    for owner in target.__mro__:
        if owner is object:
            break
        if "__init__" in vars(owner):
            named, more = _signature(owner.__init__)
            found = {**named, **found}
            if not more:
                break
    return found, False


def check_node(path: str, node: dict) -> None:
    """Raise a ConfigError for the first key of `node` its `_target_` does not take, or of the wrong type."""
    try:
        target = _locate(node["_target_"])
    except Exception:  # noqa: BLE001 - any import failure means the same thing to the user
        raise ConfigError(f"{path}._target_", f"cannot import {node['_target_']!r}",
                          "give the dotted path of a class or function") from None
    params, any_key = parameters(target)
    for key, value in node.items():
        setting = f"{path}.{key}"
        if key.startswith("_") or key in LABELS:
            continue
        if key not in params:
            if any_key:
                continue
            raise ConfigError(setting, f"is not a setting of {node['_target_']}",
                              f"remove it; the settings are {sorted(params)}")
        if isinstance(value, dict) and "_target_" in value:
            check_node(setting, value)
        elif not fits(value, params[key].annotation):
            hint = describe(params[key].annotation)
            raise ConfigError(setting, f"{value!r} is not {hint}", f"give {hint}")
    missing = [n for n, p in params.items() if p.default is p.empty and n not in node]
    if missing and not node.get("_partial_"):
        raise ConfigError(f"{path}.{missing[0]}", "is required and not set", f"set {path}.{missing[0]}=<value>")


def _missing(plain: dict, prefix: str = ""):
    """Dotted paths of the mandatory values (`???`) left unset."""
    for key, value in plain.items():
        if value == "???":
            yield f"{prefix}{key}"
        elif isinstance(value, dict):
            yield from _missing(value, f"{prefix}{key}.")


def check(cfg: DictConfig) -> None:
    """Check the top-level settings and every group node of `cfg`; one ConfigError for the first problem."""
    missing = next(_missing(OmegaConf.to_container(cfg, resolve=False)), None)
    if missing:
        raise ConfigError(missing, "has no value (???)", f"set {missing}=<value>")
    plain = OmegaConf.to_container(cfg, resolve=True)
    for f in fields(TopLevel):
        if f.name in plain and not fits(plain[f.name], f.type):
            raise ConfigError(f.name, f"{plain[f.name]!r} is not {describe(f.type)}", f"give {describe(f.type)}")
    check_threads(plain["threads"])
    for group in GROUPS:
        check_node(group, plain[group])

