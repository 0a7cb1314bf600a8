"""Fixed per-run costs of the default run (digits): what each run pays besides its training epochs.

    python benchmarks/run_costs.py [--repeats 5]

Times, in one process on the default model and data: evaluation (validation and test, once per stage),
MACs (once per stage), latency at the default settings (once per stage with `metrics.latency_stages=all`,
once with `final`), saving the final model (`save_model=true` with its torch.export program, or `state`),
and W&B offline (init and finish, once per run). Prints the median of each, its count per run and its
cost per run, against one training epoch.
"""

import argparse
import os
import tempfile
from pathlib import Path

import pytorch_lightning as pl
import torch
from common import config, median_seconds, prepared

from prunelab.config import build
from prunelab.paths import RunPaths
from prunelab.runs.spec import resolve
from prunelab.training.export import save_model
from prunelab.training.meter import latency_ms, layer_costs


def epoch_seconds(cfg, parts, folder: Path, repeats: int) -> float:
    """Median seconds of one dense training epoch through Lightning (a fresh Trainer each, no validation)."""
    def fit():
        trainer = build(cfg.trainer, max_epochs=1, logger=False, default_root_dir=str(folder), limit_val_batches=0,
                        enable_progress_bar=False, enable_checkpointing=False)
        trainer.fit(parts.module, datamodule=parts.datamodule)

    return median_seconds(fit, repeats, warmup=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("WANDB_SILENT", "true")
    cfg = config("logger=none", "trainer.enable_progress_bar=false")
    plain = resolve(cfg)
    stages = len(plain["schedule"]["targets"]) + 1
    metrics = plain["metrics"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        parts = prepared(cfg, folder)
        dm, model = parts.datamodule, parts.module.model
        dm.setup("fit")
        dm.setup("test")
        shape = dm.input_shape
        example, batch = torch.zeros(1, *shape), torch.randn(metrics["latency_batch_size"], *shape)
        paths = RunPaths(folder)
        r = args.repeats
        costs = {
            "evaluation (val + test)": (median_seconds(lambda: (parts.module.evaluate(dm.val_dataloader()),
                                                                parts.module.evaluate(dm.test_dataloader())), r),
                                        stages),
            "MACs and layer table": (median_seconds(lambda: layer_costs(model, example), r), stages),
            "latency, latency_stages=all": (median_seconds(lambda: latency_ms(
                model, batch, metrics["latency_repeats"], metrics["latency_warmup"]), r), stages),
            "latency, latency_stages=final": (median_seconds(lambda: latency_ms(
                model, batch, metrics["latency_repeats"], metrics["latency_warmup"]), r), 1),
            "save_model=true (with torch.export)": (median_seconds(lambda: save_model(
                paths, model, None, plain, shape, []), r), 1),
            "save_model=state": (median_seconds(lambda: save_model(paths, model, None, plain, shape, [],
                                                                   program=False), r), 1),
            "W&B offline init + finish": (median_seconds(lambda: build(
                config("logger=wandb", "logger.mode=offline").logger, save_dir=tmp,
                run_config=plain).finish(exit_code=0), r), 1),
        }
        pl.seed_everything(0, verbose=False)
        epoch = epoch_seconds(cfg, parts, folder, r)
    print(f"fixed per-run costs of the default run (digits, {stages} stages), median of {args.repeats}")
    print(f"{'cost':38} {'each s':>8} {'x':>3} {'per run s':>10} {'epochs':>7}")
    for name, (each, count) in costs.items():
        print(f"{name:38} {each:8.3f} {count:3d} {each * count:10.3f} {each * count / epoch:7.2f}")
    print(f"{'one training epoch':38} {epoch:8.3f}")


if __name__ == "__main__":
    main()
