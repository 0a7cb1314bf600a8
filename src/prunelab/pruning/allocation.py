"""How a global target is spread over layers: ERK densities, LAMP scores, and whole counts. Pure functions."""

import math
from collections.abc import Mapping, Sequence

import torch


def erk_densities(shapes: Mapping[str, torch.Size], density: float) -> dict[str, float]:
    """Erdos-Renyi-Kernel densities (Evci et al. 2020) with overall `density` over the weights of `shapes`.

    A layer's density is eps * sum(dims) / prod(dims), eps chosen to meet `density`; a layer that would
    exceed 1 stays dense and eps is solved again over the rest.
    """
    size = {n: math.prod(s) for n, s in shapes.items()}
    raw = {n: sum(s) / size[n] for n, s in shapes.items()}
    dense: set[str] = set()
    while True:
        free = [n for n in shapes if n not in dense]
        budget = density * sum(size.values()) - sum(size[n] for n in dense)
        weight = sum(raw[n] * size[n] for n in free)
        eps = budget / weight if weight else 0.0
        over = {n for n in free if eps * raw[n] > 1.0}
        if not over:
            return {n: 1.0 if n in dense else eps * raw[n] for n in shapes}
        dense |= over


def apportion(quotas: Mapping[str, float], total: int, caps: Mapping[str, int] | None = None) -> dict[str, int]:
    """Whole numbers summing to `total`, each the floor of its quota or one more (largest remainders first),
    none above its cap.

    `quotas` should sum to `total`; ties go to the earlier key.
    """
    caps = caps or {}
    quotas = {k: min(q, caps.get(k, math.inf)) for k, q in quotas.items()}
    counts = {k: math.floor(q) for k, q in quotas.items()}
    rest = total - sum(counts.values())
    room = [k for k in quotas if counts[k] < caps.get(k, math.inf)]
    if rest > len(room):
        raise ValueError(f"cannot place {total} within the caps {dict(caps)}")
    by_remainder = sorted(room, key=lambda k: counts[k] - quotas[k])  # stable: earlier keys win ties
    for k in by_remainder[: max(rest, 0)]:
        counts[k] += 1
    return counts


def layer_counts(shapes: Mapping[str, Sequence[int]], density: float, scope: str,
                 caps: Mapping[str, int] | None = None) -> dict[str, int]:
    """Weights to keep per layer so that round(density * all weights) are kept: the same density in every
    layer (`scope="layer"`) or ERK's (`"erk"`), none above its cap (default: the layer's size)."""
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    densities = erk_densities(shapes, density) if scope == "erk" else dict.fromkeys(shapes, density)
    kept = round(density * sum(sizes.values()))
    return apportion({n: densities[n] * sizes[n] for n in sizes}, kept, {**sizes, **(caps or {})})


def lamp_scores(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """LAMP (Lee et al. 2021): s_u^2 / sum of s_v^2 over the kept v of the layer with |s_v| >= |s_u|.

    Ranked by |score| within the layer (ties by position); pruned weights score 0 and add nothing.
    """
    sq = (scores.double() * mask).pow(2).reshape(-1)
    order = sq.argsort(stable=True)
    ranked = sq[order]
    above = ranked.flip(0).cumsum(0).flip(0)
    out = torch.empty_like(sq)
    out[order] = ranked / above.clamp_min(torch.finfo(above.dtype).tiny)
    return out.view_as(scores)
