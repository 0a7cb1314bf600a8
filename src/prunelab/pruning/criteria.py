"""Criteria: a model and its prunable parameters in, one score tensor per parameter out.

Higher scores are kept. A criterion knows nothing of targets or masks.
"""

from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch import nn


@dataclass
class ScoreContext:
    """What a criterion may use besides the weights: training batches, a loss, a seeded generator."""

    batches: Callable[[], Iterable]
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    generator: torch.Generator


class Random:
    """Uniform random scores: the baseline every method must beat."""

    def __call__(self, model: nn.Module, params: dict[str, nn.Parameter], ctx: ScoreContext):
        return {n: torch.rand(p.shape, generator=ctx.generator).to(p.device) for n, p in params.items()}


class Magnitude:
    """|w|: magnitude pruning (Han et al. 2015)."""

    def __call__(self, model: nn.Module, params: dict[str, nn.Parameter], ctx: ScoreContext):
        return {n: p.detach().abs() for n, p in params.items()}
