"""Sanity baselines for any unstructured criterion (Frankle et al. 2021; Tanaka et al. 2020).

`invert` prunes the highest scores instead of the lowest; `shuffle` keeps each layer's number of
kept weights but draws their positions at random; `reinit` keeps the mask and re-initialises the
layers that own pruned weights. All randomness comes from the stage's seeded generator, so every
DDP rank draws the same.
"""

import torch
from torch import nn

from prunelab.pruning.masks import Masks
from prunelab.pruning.select import keep_top


def invert(scores: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Negated scores: selection then keeps the weights the criterion ranks lowest."""
    return {n: -s for n, s in scores.items()}


def shuffle(model: nn.Module, before: Masks, after: Masks, generator: torch.Generator) -> Masks:
    """Per layer, as many kept weights as `after` at random positions among those alive in `before`.

    Pruned weights stay pruned, so in an iterative schedule the shuffle is within the survivors.
    """
    out = {}
    for name, mask in after.items():
        draw = torch.rand(mask.shape, generator=generator).to(mask.device)
        out[name] = keep_top(draw.masked_fill(~before[name], -1.0), mask.numel() - int(mask.sum()))
    return out


def reinit(model: nn.Module, before: Masks, after: Masks, generator: torch.Generator) -> Masks:
    """Reset every layer that owns a masked weight with its own `reset_parameters`, seeded; masks unchanged."""
    seed = int(torch.randint(2**62, (), generator=generator))
    layers = [model.get_submodule(name.rpartition(".")[0]) for name in after]
    cuda = sorted({p.device.index or 0 for layer in layers for p in layer.parameters() if p.is_cuda})
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        for layer in layers:
            layer.reset_parameters()
    return after


AFTER_SELECTION = {"shuffle": shuffle, "reinit": reinit}
BASELINES = (None, "invert", *AFTER_SELECTION)
