"""Fine-tuning overhead: a prunelab epoch against a plain PyTorch loop doing the same work,
and a 90%-sparse prunelab epoch (masks kept) against a dense one.

    python benchmarks/finetune_overhead.py [--repeats 5] [--epochs 2] [--case "LeNet-300-100 / MNIST"] [--profile]

Prints per-case medians over `--repeats` interleaved repetitions and the ratios.
"""

import argparse
import cProfile
import os
import pstats
import tempfile
import time
from pathlib import Path
from typing import Callable

import pytorch_lightning as pl
import torch.nn.functional as F
from common import config, median, prepared, threads, timed

from prunelab.config import build
from prunelab.training.callback import PruningCallback

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

CASES = {
    "LeNet-300-100 / MNIST": ["model=lenet_300_100", "dataset=mnist", "dataset.download=false",
                              f"dataset.data_dir={os.environ.get('PRUNELAB_DATA', SHARED_DATA)}"],
    "ResNet-20 / synthetic 3x32x32": ["model=resnet20", "dataset=synthetic", "dataset.input_shape=[3,32,32]",
                                      "dataset.num_samples=2560"],
}


class EpochTimer(pl.Callback):
    """Train-epoch wall times (validation is off in these runs)."""

    def __init__(self):
        self.times, self._start = [], 0.0

    def on_train_epoch_start(self, trainer, pl_module):
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        self.times.append(time.perf_counter() - self._start)


def prunelab_epochs(cfg, tmp, epochs: int) -> tuple[list[float], list[float]]:
    """Dense epochs and 90%-sparse fine-tune epochs of one prunelab run."""
    parts = prepared(cfg, tmp)
    timer = EpochTimer()
    trainer = build(cfg.trainer, max_epochs=parts.engine.schedule.total_epochs, logger=False,
                    callbacks=[PruningCallback(parts.engine), timer], default_root_dir=str(tmp), limit_val_batches=0,
                    enable_progress_bar=False)
    trainer.fit(parts.module, datamodule=parts.datamodule)
    return timer.times[:epochs], timer.times[epochs + 1:]  # skip the first fine-tune epoch (it prunes)


def profile(cfg, top: int = 25) -> None:
    """cProfile of one prunelab run (dense and 90%-sparse epochs): where the time of the loop goes."""
    profiler = cProfile.Profile()
    with tempfile.TemporaryDirectory() as tmp:
        profiler.runcall(prunelab_epochs, cfg, Path(tmp), 0)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


def plain_epochs(cfg, epochs: int) -> list[float]:
    """Seconds per epoch of a plain PyTorch loop over the same model, data order and optimizer as the run."""
    with tempfile.TemporaryDirectory() as tmp:
        parts = prepared(cfg, Path(tmp))
    datamodule, module = parts.datamodule, parts.module
    datamodule.setup("fit")
    model, times = module.model, []
    optimizer = module.optimizer_factory(model.parameters())
    for epoch in range(epochs):
        loader = datamodule.train_dataloader()
        loader.sampler.set_epoch(epoch)
        times.append(timed(lambda: plain_epoch(model, optimizer, loader)))
    return times


def plain_epoch(model, optimizer, batches) -> None:
    """forward, cross-entropy, backward, optimizer step over `batches`: logits (..., classes) against labels (...),
    so a classifier's (batch, classes) and a language model's (batch, length, vocabulary) alike."""
    model.train()
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        F.cross_entropy(logits.flatten(0, -2), y.flatten()).backward()
        optimizer.step()


def print_epochs(name: str, width: int, cfg, epochs: int, repeats: int, plain: Callable, steps: int = 1) -> None:
    """One table row: median seconds per epoch of `plain(cfg, epochs)` (a plain loop), prunelab's dense and
    90%-sparse epochs, and their ratios, over `repeats` runs; per step with the `steps` of an epoch."""
    plain_s, dense, sparse = [], [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            d, s = prunelab_epochs(cfg, Path(tmp), epochs)
        dense += d
        sparse += s
        plain_s += plain(cfg, epochs)
    p, d, s = (median(times) / steps for times in (plain_s, dense, sparse))
    print(f"{name:{width}} {p:14.3f} {d:15.3f} {d / p:6.3f} {s:11.3f} {s / d:6.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--case", choices=[*CASES, "all"], default="all")
    parser.add_argument("--profile", action="store_true", help="profile one prunelab run of the case instead")
    args = parser.parse_args()
    threads()
    if args.profile:
        name = next(iter(CASES)) if args.case == "all" else args.case
        profile(config(*CASES[name], "logger=none", f"schedule.pretrain_epochs={args.epochs}",
                       f"schedule.finetune_epochs={args.epochs}", "schedule.targets=[0.9]"))
        return
    print(f"{'case':32} {'plain s/epoch':>14} {'prunelab dense':>15} {'ratio':>6} {'90% sparse':>11} {'ratio':>6}")
    for name, overrides in CASES.items():
        if args.case not in ("all", name):
            continue
        cfg = config(*overrides, "logger=none", f"schedule.pretrain_epochs={args.epochs}",
                     f"schedule.finetune_epochs={args.epochs + 1}", "schedule.targets=[0.9]")
        print_epochs(name, 32, cfg, args.epochs, args.repeats, plain_epochs)


if __name__ == "__main__":
    main()
