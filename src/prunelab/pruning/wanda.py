"""Wanda (Sun et al. 2023): pruning by weights and activations, without labels or weight updates."""

import torch
from torch import nn

from prunelab.pruning.calibration import Calibration, capture, owners, squared_sums
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.patterns import from_reduction_view


def input_norms(model: nn.Module, params: dict[str, nn.Parameter], batches: list[torch.Tensor]) -> dict:
    """||X_j||_2 over the calibration samples for every input feature j of each weight, in the weight's shape.

    One forward pass of all layers together: every layer sees the model as it is (masked, not re-pruned).
    """
    layers = owners(model, params)
    sums = {}

    def take(name, layer, x):
        sq = squared_sums(layer, x)
        sums[name] = sums[name] + sq if name in sums else sq

    capture(model, layers, batches, take)
    out = {}
    for name, p in params.items():
        columns = sums[name].sqrt().to(p.dtype)  # (K * in,), ordered as the reduction view
        view = columns.view(1, -1, p.shape[1]).expand(p.shape[0], -1, -1)
        out[name] = from_reduction_view(view, p.shape)
    return out


class Wanda:
    """|W_ij| * ||X_j||_2: X_j the j-th input feature of the layer over `calibration`'s samples.

    For a Conv2d, X_j are the j-th entries of the unfolded input patches (input channel at one kernel
    position, zero padding included), i.e. the conv is scored as the Linear it is on its patches. The
    paper compares weights within each output row: use it with `scope: row` (or `layer`, its option).
    """

    def __init__(self, calibration: Calibration):
        self.calibration = calibration

    def __call__(self, model: nn.Module, params: dict[str, nn.Parameter], ctx: ScoreContext):
        device = next(iter(params.values())).device
        norms = input_norms(model, params, self.calibration.inputs(ctx, device))
        return {n: p.detach().abs() * norms[n] for n, p in params.items()}
