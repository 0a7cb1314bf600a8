"""Shared helpers for the benchmarks: timing with medians, composing the real config."""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def config(*overrides: str):
    """The composed prunelab config with `overrides`."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def prepared(cfg, folder: Path):
    """What a run of `cfg` in `folder` trains with (`prunelab.runs.run.Parts`), built and checked."""
    from prunelab.runs.run import prepare
    from prunelab.runs.spec import from_config

    return prepare(from_config(cfg, folder).at(folder))


def add_schedule_arguments(parser: argparse.ArgumentParser) -> None:
    """--pretrain, --finetune and --targets: the schedule of each timed run (see `schedule_overrides`)."""
    parser.add_argument("--pretrain", type=int, default=15)
    parser.add_argument("--finetune", type=int, default=2)
    parser.add_argument("--targets", default="0.5,0.8,0.9")


def schedule_overrides(args: argparse.Namespace) -> list[str]:
    """The prunelab settings of the schedule that `add_schedule_arguments` parsed."""
    return [f"schedule.pretrain_epochs={args.pretrain}", f"schedule.finetune_epochs={args.finetune}",
            f"schedule.targets=[{args.targets}]"]


def timed(fn: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median(xs) -> float:
    return statistics.median(xs)


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall seconds of `repeats` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    return median([timed(fn) for _ in range(repeats)])


def env(**extra: str) -> dict:
    """This process's environment with this checkout's `src` first on PYTHONPATH, plus `extra`."""
    path = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, **extra}


def prunelab_seconds(args: list[str], cwd: Path, **extra_env: str) -> float:
    """Wall seconds of `python -m prunelab *args`, interpreter start to exit; fails if the command does."""
    cmd = [sys.executable, "-m", "prunelab", *args]
    return timed(lambda: subprocess.run(cmd, cwd=cwd, env=env(**extra_env), check=True, capture_output=True))


def threads(n: int = 2) -> None:
    """Pin torch to `n` threads so runs compare on equal footing."""
    torch.set_num_threads(n)
