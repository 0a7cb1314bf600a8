"""Which weights can be pruned, how sparse a model is, and keeping pruned weights at zero.

A mask set maps parameter names to bool tensors of the parameter's shape (True = kept).
"""

from fnmatch import fnmatch
from typing import Sequence

import torch
from torch import nn

Masks = dict[str, torch.Tensor]

PRUNABLE_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def prunable_parameters(
    model: nn.Module, exclude: Sequence[str] = (), exclude_output: bool = True
) -> dict[str, nn.Parameter]:
    """Weights of Linear and Conv layers in module order, each shared tensor once.

    `exclude` holds fnmatch patterns over parameter names (e.g. ``"features.0.*"``);
    `exclude_output` leaves out the last prunable layer (the classifier).
    """
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, PRUNABLE_LAYERS)]
    if exclude_output and layers:
        layers = layers[:-1]
    params, seen = {}, set()
    for name, layer in layers:
        pname = f"{name}.weight" if name else "weight"
        if id(layer.weight) in seen or any(fnmatch(pname, p) for p in exclude):
            continue
        seen.add(id(layer.weight))
        params[pname] = layer.weight
    return params


def full_masks(params: dict[str, torch.Tensor]) -> Masks:
    """Masks that keep every weight."""
    return {n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()}


def sparsity(masks: Masks) -> float:
    """Fraction of masked-out weights over all masked parameters."""
    total = sum(m.numel() for m in masks.values())
    kept = sum(int(torch.count_nonzero(m)) for m in masks.values())  # ~7x faster than a bool sum
    return 1.0 - kept / total if total else 0.0


def weight_sparsity(weights: dict[str, torch.Tensor], dense_weights: int | None = None,
                    masks: Masks | None = None) -> float:
    """`weight_sparsity` (see `prunelab.results`): the fraction of the dense model's `dense_weights` prunable
    weights that are zero or removed, from the prunable `weights` as they are now (None: they are the dense ones).
    Entries `masks` prune count as zero whatever they hold (a diverged run's NaN)."""
    now = sum(w.numel() for w in weights.values())
    masks = masks or {}
    nonzero = sum(int(torch.count_nonzero(w.ne(0) & masks[n].to(w.device)) if n in masks and masks[n].shape == w.shape
                      else torch.count_nonzero(w)) for n, w in weights.items())
    total = now if dense_weights is None else dense_weights
    return 1.0 - nonzero / total if total else 0.0


def param_sparsity(model: nn.Module, dense_params: int | None = None) -> float:
    """`param_sparsity` (see `prunelab.results`): 1 - nonzero parameters now / parameters of the dense model
    (`dense_params`; None: `model` is the dense one), every tensor counted."""
    params, nonzero = count_parameters(model)
    total = params if dense_params is None else dense_params
    return 1.0 - nonzero / total if total else 0.0


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(all parameters, nonzero parameters) of a model, each shared tensor counted once."""
    params = list(model.parameters())
    return sum(p.numel() for p in params), sum(int(torch.count_nonzero(p)) for p in params)


@torch.no_grad()
def apply_masks(params: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]) -> None:
    """Zero the masked-out entries of each tensor (weights, or their gradients) in place."""
    if params:
        torch._foreach_mul_(list(params), list(masks))
