"""Gathering runs: from run directories (results.csv, .hydra/config.yaml, layer_sparsity.csv) or any
other source, into one table labelled by run, series and family, saying which runs were left out (failed,
unfinished, or dense only) and which group each run is compared in: runs of one task, model and dataset
(`results.GROUP_LABELS`) are compared with each other only."""

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
from prunelab.runs.folder import read_status
from prunelab.runs.protocol import SAMPLES
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


Group = tuple[str, ...]  # a comparison group: the values of results.GROUP_LABELS (task, model, dataset)


@dataclass
class Sweep:
    """Gathered runs: results rows (with `run`, `series`, `family`, and `retrain` with the `base` series a
    scratch control belongs to), per-layer sparsity, and runs left out. `tasks`: per group, the task its runs
    share; `samples`: per group and split (val, test), the fewest samples any of its runs was measured on
    (protocol.json), where the runs recorded it."""

    runs: pd.DataFrame
    layers: pd.DataFrame
    skipped: list[tuple[str, str]]
    protocols: pd.DataFrame = field(default_factory=pd.DataFrame)
    tasks: dict[Group, Task] = field(default_factory=dict)
    samples: dict[Group, dict[str, int]] = field(default_factory=dict)

    def groups(self) -> list[Group]:
        """The comparison groups, in the order their runs were gathered."""
        return list(self.tasks)

    def group(self, key: Group) -> "Sweep":
        """The runs of one group, as a sweep of their own (nothing left out)."""
        runs = self.runs[(self.runs[list(results.GROUP_LABELS)].astype(str) == list(key)).all(axis=1)]
        ids = set(runs[results.RUN])
        return Sweep(runs.reset_index(drop=True), _of_runs(self.layers, ids), [], _of_runs(self.protocols, ids),
                     {key: self.tasks[key]}, {key: self.samples[key]} if key in self.samples else {})


def _of_runs(table: pd.DataFrame, ids: set[str]) -> pd.DataFrame:
    return table[table[results.RUN].isin(ids)].reset_index(drop=True) if len(table) else table


def group_title(key: Group) -> str:
    """A group as its readers see it: `classification / mlp / digits`."""
    return " / ".join(map(str, key))


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


def expected_stages(config: dict, protocol: dict | None = None) -> int | None:
    """How many stages a complete run has: its schedule's targets and the dense stage, from its config, else
    from its protocol record's budget (a store's run folder has no config); None when neither says."""
    if config.get("schedule"):
        return len(config["schedule"]["targets"]) + 1
    return len(protocol["budget"]) if protocol and protocol.get("budget") else None


def missing_stages(rows: pd.DataFrame, config: dict, protocol: dict | None = None) -> str | None:
    """Why a run's rows cannot be compared: fewer stages than its schedule has, or only the dense stage; or None."""
    expected = expected_stages(config, protocol)
    if expected is not None and len(rows) < expected:
        return f"incomplete: {len(rows)} of {expected} stages"
    return None if (rows[results.STAGE] > 0).any() else "dense only: no pruned stage to compare"


def unfinished(status: dict) -> str | None:
    """Why a run whose status.json is `status` is left out (failed, or not finished), or None when it is done
    or has no status."""
    state = status.get("status")
    if state in (None, "done"):
        return None
    if state == "failed":
        where = f" at stage {status['stage']}" if "stage" in status else ""
        return f"failed{where}: {status.get('error', 'no error recorded')}"
    return f"unfinished (status {state})"


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
    """The run in `run_dir`, or why it is left out: its status.json says it failed or is not done, it has no
    results.csv, fewer stages than its schedule (or protocol record) says, or only the dense stage."""
    paths = RunPaths(run_dir)
    if why := unfinished(read_status(paths)):
        return why
    if not paths.results.is_file():
        return "no results.csv (failed before its first stage?)"
    rows = with_onnx(pd.read_csv(paths.results), paths.onnx_record)
    config = _load_config(paths.hydra_config) if paths.hydra_config.is_file() else {}
    protocol = json.loads(paths.protocol.read_text()) if paths.protocol.is_file() else None
    if why := missing_stages(rows, config, protocol):
        return why
    layers = final_layers(pd.read_csv(paths.layers)) if paths.layers.is_file() else None
    return Run(str(run_dir), rows, config_settings(config), layers, protocol, tasks.from_config(config))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + "s" * (n != 1)


def protocol_row(protocol: dict) -> dict:
    """A run's protocol record (`protocol.json`) as flat strings: code, libraries, device, data, budget, and the
    samples of its evaluated splits."""
    code, budget = protocol.get("code") or {}, protocol.get("budget") or []
    commit = (code.get("commit") or "")[:12] + (" (dirty)" if code.get("dirty") else "")
    steps = [_count(b["epochs"], "epoch") + (f" at lr {b['lr']:g}" if b.get("lr") is not None else "") for b in budget]
    schedule = ((budget[0].get("lr_schedule") or "") if budget else "").rpartition(".")[2]
    return {"code": f"prunelab {code.get('prunelab')} {commit}".strip(),
            "libraries": ", ".join(f"{k} {v}" for k, v in (protocol.get("libraries") or {}).items()),
            "device": protocol.get("device"), "data": (protocol.get("data") or "")[:16],
            "budget": (f"dense {steps[0]}" if steps else "") + (f"; {_count(len(steps) - 1, 'stage')} of {steps[1]}"
                       if len(steps) > 1 else "") + (f" ({schedule} LR)" if schedule else ""),
            "samples": ", ".join(f"{split} {n}" for split, n in (protocol.get(SAMPLES) or {}).items())}


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
    return {"pruning.name": first["method"], "task.name": run.task.name, **names, **run.settings}


def _varies(identities: list[dict], key: str) -> bool:
    return len({str(i.get(key)) for i in identities}) > 1


def series_labels(identities: dict[str, dict]) -> dict[str, str]:
    """A label per run: the method, plus what tells its series apart (seeds aside).

    Schedule, model, dataset or task names show when they vary across the runs (so that a label names one
    series in every group); other settings show as `key=value` when they vary between runs of the same method,
    and a node that only some of its runs have (`pruning.owl` of `owl=owl`) by its name.
    """
    everyone = list(identities.values())
    names = [f"{n}.name" for n in (*NODES[1:], "task") if _varies(everyone, f"{n}.name")]
    labels = {}
    for method in {i["pruning.name"] for i in everyone}:
        members = {r: i for r, i in identities.items() if i["pruning.name"] == method}
        keys = sorted(set.intersection(*(set(i) for i in members.values())))
        extra = [k for k in keys if k.split(".")[-1] != "seed" and f"{k.split('.')[0]}.name" not in names
                 and _varies(list(members.values()), k)]
        optional = sorted({".".join(k.split(".")[:2]) for i in members.values() for k in i} - {
            ".".join(k.split(".")[:2]) for k in keys})
        for run, i in members.items():
            parts = [str(i[k]) for k in names] + [f"{k.removeprefix('pruning.')}={i.get(k)}" for k in extra]
            parts += [n.removeprefix("pruning.") for n in optional if any(k.startswith(n + ".") for k in i)]
            labels[run] = method + (f" ({', '.join(parts)})" if parts else "")
    return labels


def group_of(run: Run) -> Group:
    """The group a run is compared in: its task, model and dataset (named as in its series label)."""
    identity = _identity(run)
    return tuple(str(identity.get(f"{label}.name", "?")) for label in results.GROUP_LABELS)


def fewest_samples(protocols: Iterable[dict | None]) -> dict[str, int]:
    """Per split, the fewest samples recorded in any of `protocols` (protocol.json's `samples`)."""
    found = {}
    for protocol in filter(None, protocols):
        for split, n in (protocol.get(SAMPLES) or {}).items():
            found[split] = min(n, found.get(split, n))
    return found


def build_sweep(runs: list[Run], skipped: list[tuple[str, str]]) -> Sweep:
    """Label each run's rows with its run id, series, family and group and put them in one table."""
    for run_id, reason in skipped:
        log.warning("left out %s: %s", run_id, reason)
    if not runs:
        return Sweep(pd.DataFrame(), pd.DataFrame(), skipped)
    groups = {r.id: group_of(r) for r in runs}
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
        frames.append(r.results.assign(**tag, **dict(zip(results.GROUP_LABELS, groups[r.id]))))
        if r.layers is not None:
            layers.append(r.layers.assign(**tag))
        if r.protocol is not None:
            protocols.append({results.RUN: r.id, results.SERIES: labels[r.id], **protocol_row(r.protocol)})
    table = pd.concat(frames, ignore_index=True)
    _warn_repeated_seeds(table)
    members = {key: [r for r in runs if groups[r.id] == key] for key in dict.fromkeys(groups.values())}
    samples = {key: found for key, rs in members.items() if (found := fewest_samples(r.protocol for r in rs))}
    return Sweep(table, pd.concat(layers, ignore_index=True) if layers else pd.DataFrame(), skipped,
                 pd.DataFrame(protocols), {key: rs[0].task for key, rs in members.items()}, samples)


def _warn_repeated_seeds(table: pd.DataFrame) -> None:
    runs = table.drop_duplicates(results.RUN)
    for series, seeds in runs.groupby(results.SERIES)["seed"]:
        if seeds.duplicated().any():
            log.warning("series %s has several runs with the same seed; they are averaged as if seeds", series)
