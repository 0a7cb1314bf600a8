"""A run's identity: the settings that determine a run (and its dense model), and their hash.

A key hashes only the settings that differ from their defaults (the `_target_`'s signature
defaults), so adding a setting with a default keeps every existing key (OpenLTH's rule).
"""

import hashlib
import inspect
import json

from hydra._internal.utils import _locate

from prunelab.keys import AFTER_DENSE, DENSE_NODES, LABELS, NOT_RESULTS, TASK_TRAINING, UNCHANGED


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return isinstance(a, (int, float, str, type(None))) and a == b


def signature_defaults(target) -> dict:
    """The keyword defaults of the callable named by `target`; empty when it cannot be found."""
    if not isinstance(target, str):
        return {}
    try:
        params = inspect.signature(_locate(target)).parameters.values()
    except Exception:  # noqa: BLE001 - an unknown target has no defaults; validation reports it
        return {}
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def nondefault(node):
    """`node` (plain containers) without the settings equal to their `_target_`'s default, recursively."""
    if isinstance(node, dict):
        defaults = signature_defaults(node.get("_target_"))
        return {k: nondefault(v) for k, v in node.items() if not (k in defaults and _same(defaults[k], v))}
    if isinstance(node, list):
        return [nondefault(v) for v in node]
    return node


def without(plain: dict, dotted: tuple[str, ...]) -> dict:
    """A copy of `plain` without the settings at the dotted paths (absent paths are ignored)."""
    out = json.loads(json.dumps(plain))
    for path in dotted:
        *parents, last = path.split(".")
        node = out
        for p in parents:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return out


def unchanged(plain: dict) -> tuple[str, ...]:
    """The top-level nodes of `plain` (non-default settings) that are their group's `UNCHANGED` choice."""
    return tuple(k for k, target in UNCHANGED.items() if isinstance(node := plain.get(k), dict)
                 and node.get("_target_") == target and set(node) <= {"_target_", *LABELS})


def task_training(plain: dict) -> dict:
    """The `TASK_TRAINING` settings of `plain` (non-default settings), nested as in the config; empty when none."""
    top, inner = TASK_TRAINING
    node = (plain.get(top) or {}).get(inner) or {}
    trained = {k: v for k, v in node.items() if k not in ("_target_", "_partial_")}
    return {top: {inner: trained}} if trained else {}


def settings(config: dict, drop: tuple[str, ...] = ()) -> dict:
    """The non-default settings of a resolved plain config, without `NOT_RESULTS` (but with `task_training`),
    `UNCHANGED` choices and `drop`."""
    plain = nondefault(config)
    return without(plain, NOT_RESULTS + unchanged(plain) + drop) | task_training(plain)


def dense_settings(config: dict) -> dict:
    """Exactly the settings that determine the dense model, non-default ones only."""
    plain = settings(config, drop=AFTER_DENSE)
    return {k: plain[k] for k in DENSE_NODES if k in plain}


def digest(config: dict) -> str:
    """A short stable hash of a plain config."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
