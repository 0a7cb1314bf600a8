"""Wanda (Sun et al. 2023): pruning by weights and activations, without labels or weight updates."""

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from prunelab.pruning import baselines
from prunelab.pruning.calibration import Calibration, capture, owners, squared_sums
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.masks import Masks, apply_masks
from prunelab.pruning.patterns import NM, from_reduction_view
from prunelab.pruning.pruner import LOCAL_SCOPES, UnstructuredPruner, check_scores


def input_norms(model: nn.Module, params: dict[str, nn.Parameter], batches: list[torch.Tensor],
                stop_after: nn.Module | None = None) -> dict:
    """||X_j||_2 over the calibration samples for every input feature j of each weight, in the weight's shape.

    One forward pass of all layers together: every layer sees the model as it is (masked, not re-pruned);
    with `stop_after`, each pass ends at that layer.
    """
    layers = owners(model, params)
    sums = {}

    def take(name, layer, x):
        sq = squared_sums(layer, x)
        sums[name] = sums[name] + sq if name in sums else sq

    capture(model, layers, batches, take, stop_after)
    out = {}
    for name, p in params.items():
        columns = sums[name].sqrt().to(p.dtype)  # (K * in,), ordered as the reduction view
        view = columns.view(1, -1, p.shape[1]).expand(p.shape[0], -1, -1)
        out[name] = from_reduction_view(view, p.shape)
    return out


def wanda_scores(model: nn.Module, params: dict[str, nn.Parameter], batches: list[torch.Tensor],
                 stop_after: nn.Module | None = None) -> dict:
    """|W_ij| * ||X_j||_2 of each weight, the inputs X from `model` as it is now (see `input_norms`)."""
    norms = input_norms(model, params, batches, stop_after)
    return {n: p.detach().abs() * norms[n] for n, p in params.items()}


class Wanda:
    """|W_ij| * ||X_j||_2: X_j the j-th input feature of the layer over `calibration`'s samples, all layers'
    inputs from one pass of the model as it is (the dense model, when pruning it once).

    For a Conv2d, X_j are the j-th entries of the unfolded input patches (input channel at one kernel
    position, zero padding included), i.e. the conv is scored as the Linear it is on its patches. The
    paper compares weights within each output row: use it with `scope: row` (or `layer`, its option).
    `WandaPruner` adds the paper's layer-by-layer form.
    """

    def __init__(self, calibration: Calibration):
        self.calibration = calibration

    def __call__(self, model: nn.Module, params: dict[str, nn.Parameter], ctx: ScoreContext):
        device = next(iter(params.values())).device
        return wanda_scores(model, params, self.calibration.inputs(ctx, device))


class WandaPruner(UnstructuredPruner):
    """Wanda's scores (see `Wanda`), selected by `scope` and `pattern` as `UnstructuredPruner` does.

    `sequential: true` (the paper's form for LLMs, layer after layer): the layers are pruned one at a time in
    module order, each scored with the calibration inputs it receives from the model whose earlier layers are
    already pruned. `false`: every layer is scored from one pass of the model as it is (the dense model), then
    all are pruned together. Row and layer scopes (and n:m) set each layer's count from the layer itself; the
    other scopes take the counts of the one-pass selection and prune each layer to its count in turn. Each
    layer is pruned at its `sparsities` (OWL's with `owl`, see `UnstructuredPruner`).
    """

    def __init__(self, calibration: Calibration, sequential: bool = True, scope: str = "row",
                 exclude: Sequence[str] = (), exclude_output: bool = True, rounds: int = 1,
                 baseline: str | None = None, layer_rates: Mapping[str, float] | None = None,
                 pattern: str = "unstructured", block_shape: Sequence[int] = (4, 4), owl: Callable | None = None):
        super().__init__(Wanda(calibration), scope, exclude, exclude_output, rounds, baseline, layer_rates, pattern,
                         block_shape, owl)
        self.calibration, self.sequential = calibration, sequential

    def select_round(self, model: nn.Module, params: dict[str, nn.Parameter], masks: Masks, target: float,
                     ctx: ScoreContext) -> Masks:
        """Masks at `target`: all layers from one pass, or (sequential) one layer after another."""
        if not self.sequential:
            return super().select_round(model, params, masks, target, ctx)
        local = self.scope in LOCAL_SCOPES or isinstance(self.pattern, NM)
        counts = None if local else {n: int((~m).sum()) for n, m in
                                     super().select_round(model, params, masks, target, ctx).items()}
        sparsities = self.sparsities(model, params, masks, target, ctx)  # OWL's from the model before this round
        batches = self.calibration.inputs(ctx, next(iter(params.values())).device)
        new = {}
        for name, layer in owners(model, {n: params[n] for n in masks}).items():
            one = {name: params[name]}
            scores = wanda_scores(model, one, batches, stop_after=layer)
            check_scores(self.criterion, scores, one)
            if self.baseline == "invert":
                scores = baselines.invert(scores)
            if local:
                kept = self.pattern.select(scores, {name: masks[name]}, sparsities[name], self.scope, self.layer_rates)
            else:
                kept = self.pattern.select(scores, {name: masks[name]}, counts[name] / masks[name].numel(), "layer")
            new[name] = kept[name]
            apply_masks([params[name]], [new[name]])  # the next layers' inputs come from the pruned layer
        return new
