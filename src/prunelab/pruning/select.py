"""Selection: scores and a target sparsity in, a mask out. Pure functions."""

import torch

from prunelab.pruning.masks import Masks

SCOPES = ("global", "layer")


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


def _as_float(scores: torch.Tensor) -> torch.Tensor:
    """At least float32; float64 scores (e.g. SynFlow's, which span many decades) stay float64."""
    return scores.to(torch.promote_types(scores.dtype, torch.float32))


def select(scores: dict[str, torch.Tensor], masks: Masks, target: float, scope: str) -> Masks:
    """New masks at sparsity `target`; weights already pruned stay pruned.

    `scope="global"` ranks all weights together, `"layer"` prunes each parameter to `target`.
    The count pruned is round(target * n) over all weights (global) or per parameter (layer).
    """
    ranked = {n: _as_float(scores[n]).masked_fill(~masks[n], float("-inf")) for n in masks}
    if scope == "layer":
        return {n: keep_top(s, _n_prune(target, s.numel(), masks[n])) for n, s in ranked.items()}
    flat = torch.cat([s.reshape(-1) for s in ranked.values()])
    pruned = sum(int((~m).sum()) for m in masks.values())
    keep = keep_top(flat, max(round(target * flat.numel()), pruned))
    out, start = {}, 0
    for name, s in ranked.items():
        out[name] = keep[start : start + s.numel()].view_as(s)
        start += s.numel()
    return out
