"""Sparse training at a fixed sparsity: a mask drawn per layer (uniform or ERK), then moved while the network trains.

Static (no regrowth), SET (Mocanu et al. 2018: regrow at random) and RigL (Evci et al. 2020: regrow
where the dense gradient is largest). Every `delta_t` optimizer steps each layer drops the fraction
`drop_fraction` of its active weights with the smallest magnitude and regrows as many among all the
weights inactive after the drop, the ones just dropped included (RigL's Algorithm 1 and its official
code, for SET as for RigL). A newly grown weight starts at zero; one dropped and regrown at once keeps
its value, as in that code. The count of weights per layer never changes. SET here moves the mask on
RigL's cosine schedule (`drop_fraction`), as the RigL paper's SET baseline does, not Mocanu et al.'s
constant fraction.
"""

import math
from typing import Literal

import torch
from torch import nn

from prunelab.errors import ConfigError
from prunelab.pruning.allocation import layer_counts
from prunelab.pruning.contract import Pruner
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.masks import Masks, apply_masks
from prunelab.pruning.pruner import checked_parameters
from prunelab.pruning.select import check_scope, keep_top

DST_SCOPES = ("layer", "erk")  # how the kept weights are spread: every layer alike, or ERK
DstScope = Literal[DST_SCOPES]

GROWTH = (None, "random", "gradient")


def drop_fraction(step: int, steps: int, alpha: float, t_end: float) -> float:
    """alpha / 2 (1 + cos(pi t / T_end)) after t optimizer steps, T_end = t_end * steps; 0 from T_end on."""
    end = t_end * steps
    return 0.0 if step >= end else alpha / 2 * (1 + math.cos(math.pi * step / end))


def drop_and_grow(weight: torch.Tensor, mask: torch.Tensor, grow_scores: torch.Tensor, fraction: float) -> torch.Tensor:
    """`mask` less its k = round(fraction * active) smallest-|w| weights, plus the k highest-scoring weights
    inactive after the drop (a weight just dropped among them, so it can be regrown at once)."""
    active = mask.reshape(-1)
    k = round(fraction * int(active.sum()))
    if k == 0:
        return mask
    drop = weight.detach().abs().reshape(-1).masked_fill(~active, math.inf).topk(k, largest=False).indices
    kept = active.clone()
    kept[drop] = False
    grow = grow_scores.reshape(-1).float().masked_fill(kept, -math.inf).topk(k).indices
    new = kept.clone()
    new[grow] = True
    return new.view_as(mask)


class SparseTraining(Pruner):
    """Trains at the target sparsity: `prune` draws the mask, `update` moves it during training.

    `scope` (layer: every layer alike | erk) sets each layer's share of the kept weights; `prune` keeps that many
    per layer at random among the weights not yet pruned. `growth`: null (static sparse training),
    `random` (SET) or `gradient` (RigL). Every `delta_t` steps until `t_end` of the stage's steps, each
    layer drops and regrows the fraction `drop_fraction` (cosine-decayed from `alpha`).
    """

    def __init__(self, growth: str | None = "gradient", scope: DstScope = "erk", delta_t: int = 100,
                 alpha: float = 0.3, t_end: float = 0.75, exclude: tuple[str, ...] = (), exclude_output: bool = True):
        if growth not in GROWTH:
            raise ConfigError("pruning.growth", f"unknown growth {growth!r}",
                              f"use one of {[g or 'null' for g in GROWTH]}")
        check_scope(scope, DstScope)
        if delta_t < 1:
            raise ConfigError("pruning.delta_t", f"must be >= 1 optimizer step, got {delta_t}", "e.g. delta_t=100")
        if not 0.0 < alpha < 1.0:
            raise ConfigError("pruning.alpha", f"must be in (0, 1), got {alpha}", "e.g. alpha=0.3")
        if not 0.0 < t_end <= 1.0:
            raise ConfigError("pruning.t_end", f"must be in (0, 1], got {t_end}", "e.g. t_end=0.75")
        self.growth, self.scope, self.delta_t, self.alpha, self.t_end = growth, scope, delta_t, alpha, t_end
        self.exclude, self.exclude_output = tuple(exclude), exclude_output
        self._grads: dict[str, torch.Tensor] = {}

    def parameters(self, model: nn.Module) -> dict[str, nn.Parameter]:
        """The weights this pruner may prune."""
        return checked_parameters(model, self.exclude, self.exclude_output)

    def prune(self, model: nn.Module, masks: Masks, target: float, ctx: ScoreContext) -> Masks:
        """Masks at sparsity `target` with the scope's count per layer, drawn at random among the kept weights."""
        params = self.parameters(model)
        counts = layer_counts({n: params[n].shape for n in masks}, 1.0 - target, self.scope,
                              caps={n: int(m.sum()) for n, m in masks.items()})
        new = {}
        for n, m in masks.items():
            scores = torch.rand(m.shape, generator=ctx.generator).to(m.device).masked_fill(~m, -1.0)
            new[n] = keep_top(scores, m.numel() - counts[n])
        apply_masks([params[n] for n in new], list(new.values()))
        return new

    def updates_at(self, step: int, steps: int) -> bool:
        """Whether the mask moves after `step` optimizer steps of a stage of `steps`."""
        return (self.growth is not None and step > 0 and step % self.delta_t == 0
                and drop_fraction(step, steps, self.alpha, self.t_end) > 0)

    def observe(self, params: dict[str, nn.Parameter], step: int, steps: int) -> None:
        """Before optimizer step `step` + 1: RigL keeps the dense gradients when the mask moves after it."""
        if self.growth == "gradient" and self.updates_at(step + 1, steps):
            self._grads = {n: p.grad.detach().clone() for n, p in params.items() if p.grad is not None}

    def update(self, params: dict[str, nn.Parameter], masks: Masks, step: int, steps: int, seed: int) -> Masks | None:
        """After `step` optimizer steps: the moved masks, or None when the mask does not move now."""
        if not self.updates_at(step, steps):
            return None
        fraction = drop_fraction(step, steps, self.alpha, self.t_end)
        generator = torch.Generator().manual_seed(seed)
        new = {}
        for n, m in masks.items():
            scores = (self._grads[n].abs() if self.growth == "gradient"
                      else torch.rand(m.shape, generator=generator).to(m.device))
            new[n] = drop_and_grow(params[n], m, scores, fraction)
        self._grads = {}
        return new
