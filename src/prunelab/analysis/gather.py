"""Gathering runs: from run directories (results.csv, .hydra/config.yaml, layer_sparsity.csv) or any
other source, into one table labelled by run, series and family, saying which runs were left out."""

import glob
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import pandas as pd
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from prunelab import results, tasks
from prunelab.keys import SERIES_NODES as NODES
from prunelab.labels import method_family
from prunelab.paths import RunPaths
from prunelab.summary import final_layers
from prunelab.tasks import Task

log = logging.getLogger(__name__)

RESULTS = RunPaths(Path()).results.name
HYDRA_CONFIG = str(RunPaths(Path()).hydra_config)
RETRAIN = "schedule.retrain"

@dataclass
class Run:
    """One run as gathered: its results rows, its config settings (flattened) and per-layer sparsity."""

    id: str
    results: pd.DataFrame
    settings: dict = field(default_factory=dict)
    layers: pd.DataFrame | None = None
    protocol: dict | None = None
    task: Task = tasks.CLASSIFICATION


@dataclass
class Sweep:
    """Gathered runs: results rows (with `run`, `series`, `family`, and `retrain` with the `base` series a
    scratch control belongs to), per-layer sparsity, and runs left out."""

    runs: pd.DataFrame
    layers: pd.DataFrame
    skipped: list[tuple[str, str]]
    protocols: pd.DataFrame = field(default_factory=pd.DataFrame)
    task: Task = tasks.CLASSIFICATION  # the task every run shares


def flatten(node: dict, prefix: str = "") -> dict:
    """Nested config -> {"a.b": value}; lists become strings so that values can be compared."""
    flat = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value) if isinstance(value, list) else value
    return flat


def run_dirs(paths: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """Run directories (holding results.csv or .hydra/config.yaml) under `paths`, which may be globs;
    and the paths that match nothing."""
    found, missing = set(), []
    for pattern in filter(None, map(str, paths)):
        tops = [Path(p) for p in sorted(glob.glob(pattern, recursive=True))]
        if not tops:
            missing.append(pattern)
        for top in tops:
            marks = [top] if top.is_file() else [*top.rglob(RESULTS), *top.rglob(HYDRA_CONFIG)]
            found |= {m.parent if m.name == RESULTS else m.parent.parent for m in marks}
    return sorted(found), missing


def missing_stages(rows: pd.DataFrame, config: dict) -> str | None:
    """Why a run's rows are incomplete (fewer stages than its schedule has), or None."""
    expected = len(config["schedule"]["targets"]) + 1
    return f"incomplete: {len(rows)} of {expected} stages" if len(rows) < expected else None


def config_settings(config: dict) -> dict:
    """The flattened settings that tell series apart: the nodes in NODES."""
    return flatten({k: config[k] for k in NODES if k in config})


def _load_config(path: Path) -> dict:
    config = OmegaConf.load(path)
    try:  # resolved, as W&B stores it
        return OmegaConf.to_container(config, resolve=True)
    except OmegaConfBaseException:  # e.g. ${hydra:...}, which resolves only inside the run
        return OmegaConf.to_container(config)


def with_onnx(rows: pd.DataFrame, record: Path) -> pd.DataFrame:
    """`rows` with the ONNX check's CPU latencies (onnx.json, if any) as columns of its stage: `onnx_b1_ms`,
    `torch_b1_ms`, `onnx_b32_ms`, ... (empty in the other stages)."""
    if not record.is_file():
        return rows
    found = json.loads(record.read_text())
    rows = rows.copy()
    for name, ms in found.get(results.LATENCY, {}).items():
        runtime, batch = name.split("_b")
        rows.loc[rows[results.STAGE] == found["stage"], results.onnx_latency(runtime, int(batch))] = ms
    return rows


def load_run(run_dir: Path) -> Run | str:
    """The run in `run_dir`, or why it is left out: no results.csv, or fewer stages than its schedule."""
    paths = RunPaths(run_dir)
    results, config_file = paths.results, paths.hydra_config
    if not results.is_file():
        return "no results.csv (failed before its first stage?)"
    rows = with_onnx(pd.read_csv(results), paths.onnx_record)
    config = _load_config(config_file) if config_file.is_file() else {}
    if config and missing_stages(rows, config):
        return missing_stages(rows, config)
    layers = final_layers(pd.read_csv(paths.layers)) if paths.layers.is_file() else None
    protocol = json.loads(paths.protocol.read_text()) if paths.protocol.is_file() else None
    return Run(str(run_dir), rows, config_settings(config), layers, protocol, tasks.from_config(config))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + "s" * (n != 1)


def protocol_row(protocol: dict) -> dict:
    """A run's protocol record (`protocol.json`) as flat strings: code, libraries, device, data, budget."""
    code, budget = protocol.get("code") or {}, protocol.get("budget") or []
    commit = (code.get("commit") or "")[:12] + (" (dirty)" if code.get("dirty") else "")
    steps = [_count(b["epochs"], "epoch") + (f" at lr {b['lr']:g}" if b.get("lr") is not None else "") for b in budget]
    schedule = (budget[0].get("lr_schedule") or "").rpartition(".")[2]
    return {"code": f"prunelab {code.get('prunelab')} {commit}".strip(),
            "libraries": ", ".join(f"{k} {v}" for k, v in (protocol.get("libraries") or {}).items()),
            "device": protocol.get("device"), "data": (protocol.get("data") or "")[:16],
            "budget": (f"dense {steps[0]}" if steps else "") + (f"; {_count(len(steps) - 1, 'stage')} of {steps[1]}"
                       if len(steps) > 1 else "") + (f" ({schedule} LR)" if schedule else "")}


def collect(paths: Iterable[str | Path]) -> tuple[list[Run], list[tuple[str, str]]]:
    """Every complete run under `paths` (sweep directories, run directories, globs), and what was left out."""
    dirs, missing = run_dirs(paths)
    runs, skipped = [], [(path, "no such file or directory") for path in missing]
    for run_dir in dirs:
        run = load_run(run_dir)
        if isinstance(run, Run):
            runs.append(run)
        else:
            skipped.append((str(run_dir), run))
    return runs, skipped


def gather(paths: Iterable[str | Path]) -> Sweep:
    """The sweep of every complete run under `paths`; warns about each run it leaves out."""
    return build_sweep(*collect(paths))


def _identity(run: Run) -> dict:
    first = run.results.iloc[0]
    names = {f"{node}.name": first[node] for node in NODES[1:] if node in first}
    return {"pruning.name": first["method"], **names, **run.settings}


def _varies(identities: list[dict], key: str) -> bool:
    return len({str(i.get(key)) for i in identities}) > 1


def series_labels(identities: dict[str, dict]) -> dict[str, str]:
    """A label per run: the method, plus what tells its series apart (seeds aside).

    Model, dataset or schedule names show when they vary across the runs; other settings show as
    `key=value` when they vary between runs of the same method.
    """
    everyone = list(identities.values())
    names = [f"{n}.name" for n in NODES[1:] if _varies(everyone, f"{n}.name")]
    labels = {}
    for method in {i["pruning.name"] for i in everyone}:
        members = {r: i for r, i in identities.items() if i["pruning.name"] == method}
        keys = sorted(set.intersection(*(set(i) for i in members.values())))
        extra = [k for k in keys if k.split(".")[-1] != "seed" and f"{k.split('.')[0]}.name" not in names
                 and _varies(list(members.values()), k)]
        for run, i in members.items():
            parts = [str(i[k]) for k in names] + [f"{k.removeprefix('pruning.')}={i.get(k)}" for k in extra]
            labels[run] = method + (f" ({', '.join(parts)})" if parts else "")
    return labels


def build_sweep(runs: list[Run], skipped: list[tuple[str, str]]) -> Sweep:
    """Label each run's rows with its run id, series and family and put them in one table."""
    for run_id, reason in skipped:
        log.warning("left out %s: %s", run_id, reason)
    if not runs:
        return Sweep(pd.DataFrame(), pd.DataFrame(), skipped)
    labels = series_labels({r.id: _identity(r) for r in runs})
    # the series each run belongs to once its retraining (fine-tuning or a scratch control) is set aside
    bases = series_labels({r.id: {k: v for k, v in _identity(r).items() if k != RETRAIN} for r in runs})
    frames, layers, protocols = [], [], []
    for r in runs:
        method = r.results["method"].iloc[0]
        family = r.results["family"].iloc[0] if "family" in r.results else method_family(
            {"name": method, "family": r.settings.get("pruning.family")})
        tag = {results.RUN: r.id, results.SERIES: labels[r.id], "family": family, results.BASE: bases[r.id],
               results.RETRAIN: r.settings.get(RETRAIN, "finetune")}
        frames.append(r.results.assign(**tag))
        if r.layers is not None:
            layers.append(r.layers.assign(**tag))
        if r.protocol is not None:
            protocols.append({results.RUN: r.id, results.SERIES: labels[r.id], **protocol_row(r.protocol)})
    table = pd.concat(frames, ignore_index=True)
    _warn_repeated_seeds(table)
    return Sweep(table, pd.concat(layers, ignore_index=True) if layers else pd.DataFrame(), skipped,
                 pd.DataFrame(protocols), common_task(runs))


def common_task(runs: list[Run]) -> Task:
    """The task every run shares; a ValueError naming them when runs of different tasks are compared."""
    found = {r.task.name: r.task for r in runs}
    if len(found) > 1:
        raise ValueError(f"runs of different tasks ({', '.join(sorted(found))}) cannot be compared on one axis: "
                         "compare each task's runs apart")
    return next(iter(found.values()))


def _warn_repeated_seeds(table: pd.DataFrame) -> None:
    runs = table.drop_duplicates(results.RUN)
    for series, seeds in runs.groupby(results.SERIES)["seed"]:
        if seeds.duplicated().any():
            log.warning("series %s has several runs with the same seed; they are averaged as if seeds", series)
