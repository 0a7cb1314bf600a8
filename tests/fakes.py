"""Fake runs and W&B files for the comparison tests: results.csv, .hydra/config.yaml, layer_sparsity.csv."""

import json
import struct
from pathlib import Path

import pandas as pd
import yaml

TARGETS = (0.5, 0.8)


def fake_results(method: str, seed: int, accs, targets=TARGETS, family: str | None = "magnitude", **columns):
    """One run's rows: stage 0 dense, then one stage per target, with the given test accuracies."""
    stages = range(len(accs))
    rows = pd.DataFrame({
        "method": method, "model": "mlp", "dataset": "digits", "schedule": "iterative", "seed": seed,
        "stage": list(stages), "target_sparsity": [0.0, *targets][: len(accs)],
        "sparsity": [0.0, *targets][: len(accs)], "params": 1000,
        "nonzero_params": [int(1000 * (1 - s)) for s in [0.0, *targets][: len(accs)]],
        "acc_before_ft": accs, "val_acc": accs, "test_acc": accs, "epoch": list(stages),
        "stage_time_s": 1.0, "wall_time_s": [1.0 + s for s in stages], **columns,
    })
    return rows if family is None else rows.assign(family=family)


def write_run(run_dir: Path, method: str, seed: int, accs, targets=TARGETS, family: str | None = "magnitude",
              scope: str = "global", **columns) -> Path:
    """A run directory as `prunelab` leaves it (results.csv, .hydra/config.yaml, layer_sparsity.csv)."""
    run_dir = Path(run_dir)
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    fake_results(method, seed, accs, targets, family, **columns).to_csv(run_dir / "results.csv", index=False)
    pruning = {"name": method, "scope": scope, **({"family": family} if family else {})}
    config = {"pruning": pruning, "schedule": {"name": "iterative", "targets": list(targets)},
              "model": {"name": "mlp"}, "dataset": {"name": "digits", "seed": "${seed}"}, "seed": seed}
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    last = [0.0, *targets][len(accs) - 1]
    pd.DataFrame({"layer": ["fc1.weight", "fc2.weight"], "params": [800, 200], "sparsity": [last + 0.05, last - 0.2]}
                 ).to_csv(run_dir / "layer_sparsity.csv", index=False)
    return run_dir


def write_sweep(sweep_dir: Path, methods: dict[str, list], seeds=(0, 1), **kwargs) -> Path:
    """A multirun directory: one run per method and seed; `methods` maps a method to its accuracies
    (seed s adds 0.01 * s)."""
    jobs = [(method, accs, seed) for method, accs in methods.items() for seed in seeds]
    for i, (method, accs, seed) in enumerate(jobs):
        write_run(sweep_dir / f"{i}_{method}_s{seed}", method, seed, [a + 0.01 * seed for a in accs], **kwargs)
    return sweep_dir


# -- W&B's offline transaction log (run-<id>.wandb): a LevelDB-style log of protobuf Records -----------
BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def wandb_records(path: Path):
    """Every `wandb_internal_pb2.Record` in a .wandb file, in order."""
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", "not a W&B transaction log"
    pos, chunks = HEADER, b""
    while pos + HEADER <= len(data):
        if BLOCK - pos % BLOCK < HEADER:  # a block's tail too short for a header is padding
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        chunk, pos = data[pos + HEADER:pos + HEADER + length], pos + HEADER + length
        if kind == 0:  # zero-filled padding
            continue
        chunks = chunk if kind in (FULL, FIRST) else chunks + chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunks)
            yield record


def _items(items) -> dict:
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items}


def wandb_run_file(run_dir: Path) -> dict:
    """What a W&B run logged, read back from its .wandb file: the run record, history rows, summary
    updates, artifacts and exit record."""
    found = {"run": None, "history": [], "summary": {}, "artifacts": [], "exit": None}
    for record in wandb_records(run_dir / f"run-{run_dir.name.split('-')[-1]}.wandb"):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            found["history"].append(_items(record.history.item))
        elif kind == "summary":
            found["summary"].update(_items(record.summary.update))
        elif kind == "artifact":
            found["artifacts"].append(record.artifact)
        elif kind in ("run", "exit"):
            found[kind] = getattr(record, kind)
    return found


def wandb_run_dirs(root: Path) -> list[Path]:
    return sorted(Path(root).glob("wandb/offline-run-*"))
