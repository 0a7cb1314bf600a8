"""Criteria: a model and its prunable parameters in, one score tensor per parameter out.

Higher scores are kept. A criterion knows nothing of targets or masks.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch
from torch import nn

from prunelab.errors import ConfigError


@dataclass
class ScoreContext:
    """What a criterion may use besides the weights: training batches, a loss, a seeded generator.

    `batches()`: a fresh iterable of (inputs, labels) training batches; `inputs()`: their inputs alone, for
    methods that need no labels (tracing, calibration); `loss(outputs, labels)`: the training loss;
    `generator`: a seeded CPU generator for every random draw. `unlabelled`, where given, serves `inputs()`
    (batches of inputs without labels, as `prunelab.prune` may be given). `calibration(n, seed)`, where the
    data prescribes its calibration samples, gives `n` unlabelled training inputs (a language model's:
    windows at random positions of the training tokens); None: they are drawn from `batches`.
    """

    batches: Callable[[], Iterable]
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    generator: torch.Generator
    unlabelled: Callable[[], Iterable] | None = None
    calibration: Callable[[int, int], torch.Tensor] | None = None

    def inputs(self) -> Iterator[torch.Tensor]:
        """A fresh iterator over the training inputs, without their labels."""
        if self.unlabelled is not None:
            return iter(self.unlabelled())
        return (x for x, _ in self.batches())


class Random:
    """Uniform random scores: the baseline every method must beat."""

    def __call__(self, model: nn.Module, params: dict[str, nn.Parameter], ctx: ScoreContext):
        return {n: torch.rand(p.shape, generator=ctx.generator).to(p.device) for n, p in params.items()}


class Magnitude:
    """|w|: magnitude pruning (Han et al. 2015)."""

    def __call__(self, model: nn.Module, params: dict[str, nn.Parameter], ctx: ScoreContext):
        return {n: p.detach().abs() for n, p in params.items()}


class TicketMasks:
    """A criterion that replays the masks of a run saved with `schedule.save_masks=true`.

    The score of a weight is the number of that run's stages it survived. Masks of a cumulative
    run nest, so pruning to one of its targets with the same pruner settings keeps exactly the
    weights it kept at that target (used for the random re-initialisation control of a ticket).
    """

    def __init__(self, path: str):
        if not Path(path).is_file():
            raise ConfigError("pruning.criterion.path", f"no masks at {path}",
                              "run the ticket first (schedule.save_masks=true) and give its masks.pt")
        stages: dict[int, dict[str, torch.Tensor]] = torch.load(path, map_location="cpu", weights_only=True)
        self.survived = {n: sum(m[n].float() for m in stages.values()) for n in next(iter(stages.values()))}

    def __call__(self, model: nn.Module, params: dict[str, nn.Parameter], ctx) -> dict[str, torch.Tensor]:
        missing = sorted(set(params) - set(self.survived))
        if missing:
            raise ConfigError("pruning.criterion.path", f"the saved masks lack {missing}",
                              "replay masks of the same model with the same pruning.exclude settings")
        return {n: self.survived[n].to(p.device) for n, p in params.items()}
