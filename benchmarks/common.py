"""Shared helpers for the benchmarks: timing with medians, composing the real config."""

import statistics
import time
from pathlib import Path
from typing import Callable

import torch
from hydra import compose, initialize_config_dir

CONF = Path(__file__).resolve().parents[1] / "conf"


def config(*overrides: str):
    """The composed prunelab config with `overrides`."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def timed(fn: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median(xs) -> float:
    return statistics.median(xs)


def threads(n: int = 2) -> None:
    """Pin torch to `n` threads so runs compare on equal footing."""
    torch.set_num_threads(n)
