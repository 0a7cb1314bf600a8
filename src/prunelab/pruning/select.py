"""Selection: scores and a target sparsity in, a mask out. Pure functions."""

from collections.abc import Iterable, Mapping
from fnmatch import fnmatch

import torch

from prunelab.errors import ConfigError
from prunelab.pruning.masks import Masks

SCOPES = ("global", "layer")


def check_scope(scope: str) -> None:
    """A ConfigError unless `scope` is one of SCOPES."""
    if scope not in SCOPES:
        raise ConfigError("pruning.scope", f"unknown scope {scope!r}", f"use one of {list(SCOPES)}")


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


def select(
    scores: dict[str, torch.Tensor], masks: Masks, target: float, scope: str, rates: Mapping[str, float] | None = None
) -> Masks:
    """New masks at sparsity `target`; weights already pruned stay pruned.

    `scope="global"` ranks all weights together, `"layer"` prunes each parameter to `target`
    (or to its `layer_targets` under `rates`). The count pruned is round(target * n) over all
    weights (global) or per parameter (layer).
    """
    ranked = {n: _as_float(scores[n]).masked_fill(~masks[n], float("-inf")) for n in masks}
    if scope == "layer":
        targets = layer_targets(ranked, target, rates or {})
        return {n: keep_top(s, _n_prune(targets[n], s.numel(), masks[n])) for n, s in ranked.items()}
    flat = torch.cat([s.reshape(-1) for s in ranked.values()])
    pruned = sum(int((~m).sum()) for m in masks.values())
    keep = keep_top(flat, max(round(target * flat.numel()), pruned))
    out, start = {}, 0
    for name, s in ranked.items():
        out[name] = keep[start : start + s.numel()].view_as(s)
        start += s.numel()
    return out
