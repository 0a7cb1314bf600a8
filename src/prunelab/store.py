"""Where runs live: one folder per hash of the settings that determine the run, so a rerun finds it.

A key hashes only the settings that differ from their defaults (the `_target_`'s signature
defaults), so adding a setting with a default keeps every existing key (OpenLTH's rule).
"""

import hashlib
import inspect
import json
import os
from pathlib import Path

from hydra._internal.utils import _locate
from omegaconf import DictConfig, OmegaConf

# Settings that change how a run is watched, stored or fed, never its results.
NOT_RESULTS = (
    "logger", "store_dir", "cache",
    "trainer.enable_progress_bar", "trainer.enable_model_summary", "trainer.log_every_n_steps",
    "dataset.data_dir", "dataset.download", "dataset.num_workers", "dataset.eval_batch_size",
)


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


def settings(cfg: DictConfig, drop: tuple[str, ...] = ()) -> dict:
    """The resolved non-default settings of `cfg`, without `NOT_RESULTS` and `drop`."""
    plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    plain.pop("hydra", None)
    return without(nondefault(plain), NOT_RESULTS + drop)


def digest(config: dict) -> str:
    """A short stable hash of a plain config."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def run_dir(cfg: DictConfig) -> Path | None:
    """`<store_dir>/runs/<method>_<model>_<dataset>_s<seed>-<hash>`, or None without a store."""
    if not cfg.store_dir:
        return None
    label = f"{cfg.pruning.name}_{cfg.model.name}_{cfg.dataset.name}_s{cfg.seed}"
    return Path(cfg.store_dir) / "runs" / f"{label}-{digest(settings(cfg))}"


def read_status(folder: Path) -> dict:
    """The run's status.json (`{}` when there is none)."""
    path = Path(folder) / "status.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def write_status(folder: Path, status: dict) -> None:
    """Write status.json atomically."""
    path = Path(folder) / "status.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status, indent=1, default=str))
    os.replace(tmp, path)
