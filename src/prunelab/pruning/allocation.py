"""Sparsity allocation: how a global density is spread over layers (uniform, Erdős–Rényi-Kernel). Pure functions."""

import math
from typing import Mapping, Sequence

from prunelab.errors import ConfigError

ALLOCATIONS = ("uniform", "erk")


def check_allocation(allocation: str) -> None:
    """A ConfigError unless `allocation` is one of ALLOCATIONS."""
    if allocation not in ALLOCATIONS:
        raise ConfigError("pruning.allocation", f"unknown allocation {allocation!r}", f"use one of {list(ALLOCATIONS)}")


def erk_densities(shapes: Mapping[str, Sequence[int]], density: float, power: float = 1.0) -> dict[str, float]:
    """Erdős–Rényi-Kernel densities (Evci et al. 2020) that keep `density` of all weights.

    A layer's density is eps * (sum of its dimensions / product of its dimensions) ** power, with eps
    chosen so that the kept weights total density * (all weights). Layers whose density would exceed
    1 stay dense and eps is solved again over the others, until none does.
    """
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    raw = {n: (sum(s) / sizes[n]) ** power for n, s in shapes.items()}
    total, dense = density * sum(sizes.values()), set()
    while True:
        rest = [n for n in shapes if n not in dense]
        budget = total - sum(sizes[n] for n in dense)
        eps = budget / sum(raw[n] * sizes[n] for n in rest) if rest else 0.0
        over = {n for n in rest if eps * raw[n] > 1.0}
        if not over:
            return {n: 1.0 if n in dense else eps * raw[n] for n in shapes}
        dense |= over


def kept_counts(sizes: Mapping[str, int], densities: Mapping[str, float], kept: int,
                caps: Mapping[str, int] | None = None) -> dict[str, int]:
    """Whole numbers of weights to keep per layer that total exactly `kept`, as near to densities * sizes as
    possible (largest remainders), none above its cap (default: its size)."""
    caps = dict(caps or sizes)
    if kept > sum(caps.values()):
        raise ValueError(f"cannot keep {kept} weights within {sum(caps.values())}")
    want = {n: min(densities[n] * sizes[n], caps[n]) for n in sizes}
    counts = {n: math.floor(w) for n, w in want.items()}
    while sum(counts.values()) < kept:  # largest remainder first; a layer gets a second one only after all others
        room = [n for n in sizes if counts[n] < caps[n]]
        pick = max(room, key=lambda n: want[n] - counts[n])
        counts[pick] += 1
        want[pick] = max(want[pick], counts[pick])
    return counts


def layer_counts(shapes: Mapping[str, Sequence[int]], density: float, allocation: str,
                 caps: Mapping[str, int] | None = None) -> dict[str, int]:
    """Weights to keep per layer under `allocation` so that round(density * all weights) are kept."""
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    densities = erk_densities(shapes, density) if allocation == "erk" else dict.fromkeys(shapes, density)
    return kept_counts(sizes, densities, round(density * sum(sizes.values())), caps)
