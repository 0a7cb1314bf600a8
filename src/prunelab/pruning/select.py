"""Selection: scores and a target sparsity in, a mask out. Pure functions."""

from collections.abc import Iterable, Mapping
from fnmatch import fnmatch

import torch

from prunelab.errors import ConfigError
from prunelab.pruning.allocation import apportion, erk_densities, lamp_scores
from prunelab.pruning.masks import Masks

SCOPES = ("global", "layer")  # the scopes whole-channel pruning supports; weights have ALLOCATIONS


def check_scope(scope: str, choices=SCOPES) -> None:
    """A ConfigError unless `scope` is one of `choices` (whole channels: SCOPES; weights: ALLOCATIONS)."""
    if scope not in choices:
        raise ConfigError("pruning.scope", f"unknown scope {scope!r}", f"use one of {list(choices)}")


def keep_top(scores: torch.Tensor, n_prune: int) -> torch.Tensor:
    """Bool mask of `scores`' shape that prunes exactly `n_prune` lowest scores.

    Ties at the threshold are broken by position, so the count is exact.
    """
    flat = scores.reshape(-1)
    n = flat.numel()
    if n_prune <= 0:
        return torch.ones_like(scores, dtype=torch.bool)
    if n_prune >= n:
        return torch.zeros_like(scores, dtype=torch.bool)
    threshold = flat.kthvalue(n_prune).values
    keep = flat > threshold
    missing = n - n_prune - int(keep.sum())
    if missing > 0:
        ties = (flat == threshold).nonzero().squeeze(1)
        keep[ties[-missing:]] = True
    return keep.view_as(scores)


def _n_prune(target: float, n: int, mask: torch.Tensor) -> int:
    return max(round(target * n), int((~mask).sum()))


def layer_targets(names: Iterable[str], target: float, rates: Mapping[str, float]) -> dict[str, float]:
    """Per-parameter sparsity for `target`: a parameter matching pattern p keeps (1 - target) ** rates[p].

    The first matching fnmatch pattern wins; others follow `target` (rate 1). A rate of
    log(1 - r) / log(1 - r0) prunes r per round when the targets prune r0 per round.
    """
    rate = {n: next((r for p, r in rates.items() if fnmatch(n, p)), 1.0) for n in names}
    return {n: target if r == 1.0 else 1.0 - (1.0 - target) ** r for n, r in rate.items()}


def _as_float(scores: torch.Tensor) -> torch.Tensor:
    """At least float32; float64 scores (e.g. SynFlow's, which span many decades) stay float64."""
    return scores.to(torch.promote_types(scores.dtype, torch.float32))


def keep_top_rows(scores: torch.Tensor, n_prune: torch.Tensor) -> torch.Tensor:
    """Bool mask of 2-D `scores` that prunes exactly `n_prune[r]` lowest scores of each row r (ties by position)."""
    order = scores.argsort(dim=1, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(scores.shape[1], device=scores.device).expand_as(order))
    return rank >= n_prune.unsqueeze(1)


def _global(ranked, masks, target, rates, shapes) -> Masks:
    flat = torch.cat([s.reshape(-1) for s in ranked.values()])
    pruned = sum(int((~m).sum()) for m in masks.values())
    keep = keep_top(flat, max(round(target * flat.numel()), pruned))
    out, start = {}, 0
    for name, s in ranked.items():
        out[name] = keep[start : start + s.numel()].view_as(s)
        start += s.numel()
    return out


def _layer(ranked, masks, target, rates, shapes) -> Masks:
    targets = layer_targets(ranked, target, rates or {})
    return {n: keep_top(s, _n_prune(targets[n], s.numel(), masks[n])) for n, s in ranked.items()}


def _row(ranked, masks, target, rates, shapes) -> Masks:
    out = {}
    for name, s in ranked.items():
        rows, mask = s.reshape(s.shape[0], -1), masks[name].reshape(s.shape[0], -1)
        counts = apportion({r: target * rows.shape[1] for r in range(rows.shape[0])}, round(target * s.numel()))
        n_prune = torch.tensor(list(counts.values()), device=s.device).maximum((~mask).sum(1))
        out[name] = keep_top_rows(rows, n_prune).view_as(s)
    return out


def _erk(ranked, masks, target, rates, shapes) -> Masks:
    shapes = shapes or {n: s.shape for n, s in ranked.items()}
    densities = erk_densities(shapes, 1.0 - target)
    sizes = {n: s.numel() for n, s in ranked.items()}
    counts = apportion({n: sizes[n] * (1.0 - densities[n]) for n in ranked}, round(target * sum(sizes.values())))
    return {n: keep_top(s, max(counts[n], int((~masks[n]).sum()))) for n, s in ranked.items()}


def _lamp(ranked, masks, target, rates, shapes) -> Masks:
    lamp = {n: lamp_scores(s.masked_fill(~masks[n], 0.0), masks[n]).masked_fill(~masks[n], float("-inf"))
            for n, s in ranked.items()}
    return _global(lamp, masks, target, rates, shapes)


# How a target is spread over the layers (`pruning.scope`): each takes the ranked scores (pruned at -inf).
ALLOCATIONS = {"global": _global, "layer": _layer, "row": _row, "erk": _erk, "lamp": _lamp}


def select(
    scores: dict[str, torch.Tensor], masks: Masks, target: float, scope: str, rates: Mapping[str, float] | None = None,
    shapes: Mapping[str, torch.Size] | None = None,
) -> Masks:
    """New masks at sparsity `target`; weights already pruned stay pruned.

    `scope` is the allocation: "global" ranks all weights together (round(target * n) of all weights);
    "layer" prunes round(target * n) of each parameter (or its `layer_targets` under `rates`); "row" does
    so too, spread over the parameter's output rows as evenly as whole counts allow (rows differ by at
    most one; Wanda's comparison group); "erk" gives each parameter its Erdos-Renyi-Kernel density (of
    `shapes`, the scores' own by default) in whole counts summing to round(target * n); "lamp" ranks the
    LAMP scores globally. Parameters already sparser than their share keep what they pruned.
    """
    ranked = {n: _as_float(scores[n]).masked_fill(~masks[n], float("-inf")) for n in masks}
    return ALLOCATIONS[scope](ranked, masks, target, rates, shapes)
