"""Wanda (Sun et al. 2023): pruning by weights and activations, without labels or weight updates."""

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from prunelab.pruning import baselines
from prunelab.pruning.calibration import Calibration, capture, owners, squared_sums
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.masks import Masks, apply_masks
from prunelab.pruning.patterns import NM, from_reduction_view
from prunelab.pruning.pruner import LOCAL_SCOPES, Rounds, UnstructuredPruner, check_scores
from prunelab.pruning.select import Scope
from prunelab.pruning.sequential import walk


def input_norms(model: nn.Module, params: dict[str, nn.Parameter], batches: list[torch.Tensor]) -> dict:
    """||X_j||_2 over the calibration samples for every input feature j of each weight, in the weight's shape.

    One forward pass of all layers together: every layer sees the model as it is (masked, not re-pruned).
    """
    sums = {}
    capture(model, owners(model, params), batches, summing(sums))
    return {name: _as_weight(sums[name].sqrt(), p) for name, p in params.items()}


def summing(sums: dict):
    """A `take` that adds each layer input's `squared_sums` to `sums[name]`."""
    def take(name, layer, x):
        sq = squared_sums(layer, x)
        sums[name] = sums[name] + sq if name in sums else sq
    return take


def _as_weight(columns: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Per-column values (K * in,), ordered as the reduction view, broadcast to the shape of the weight `p`."""
    view = columns.to(p.dtype).view(1, -1, p.shape[1]).expand(p.shape[0], -1, -1)
    return from_reduction_view(view, p.shape)


def wanda_scores(model: nn.Module, params: dict[str, nn.Parameter], batches: list[torch.Tensor]) -> dict:
    """|W_ij| * ||X_j||_2 of each weight, the inputs X from `model` as it is now (see `input_norms`)."""
    norms = input_norms(model, params, batches)
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

    `sequential: true` (the paper's form for LLMs, layer after layer, `prunelab.pruning.sequential.walk`): a
    causal LM's decoder layers are pruned one after another, each layer's Linears together, scored on the inputs
    that the pruned layers before it produce (as the paper's code); other models' layers one at a time in module
    order, each on the inputs it receives from the model whose earlier layers are already pruned. `false`: every layer is scored from one pass of the model as it is (the dense model), then
    all are pruned together. Row and layer scopes (and n:m) set each layer's count from the layer itself; the
    other scopes take the counts of the one-pass selection and prune each layer to its count in turn. Each
    layer is pruned at its `sparsities` (OWL's with `owl`, see `UnstructuredPruner`).
    """

    def __init__(self, calibration: Calibration, sequential: bool = True, scope: Scope = "row",
                 exclude: Sequence[str] = (), exclude_output: bool = True, rounds: Rounds = 1,
                 baseline: str | None = None, layer_rates: Mapping[str, float] | None = None,
                 pattern: str = "unstructured", block_shape: Sequence[int] = (4, 4), owl: Callable | None = None):
        super().__init__(Wanda(calibration), scope, exclude, exclude_output, rounds, baseline, layer_rates, pattern,
                         block_shape, owl)
        self.calibration, self.sequential = calibration, sequential

    def select_round(self, model: nn.Module, params: dict[str, nn.Parameter], masks: Masks, target: float,
                     ctx: ScoreContext) -> Masks:
        """Masks at `target`: all layers from one pass, or (sequential) group after group (`sequential.walk`)."""
        if not self.sequential:
            return super().select_round(model, params, masks, target, ctx)
        if self.scope in LOCAL_SCOPES or isinstance(self.pattern, NM):
            sparsities = self.sparsities(model, params, masks, target, ctx)  # OWL's from the model before this round
            scope = self.scope
        else:  # each layer at its count in the one-pass selection of the ranking scope
            chosen = super().select_round(model, params, masks, target, ctx)
            sparsities, scope = {n: float((~m).sum()) / m.numel() for n, m in chosen.items()}, "layer"
        batches = self.calibration.inputs(ctx, next(iter(params.values())).device)
        sums, new = {}, {}

        def prune(names):
            for name in names:
                p = params[name]
                scores = {name: p.detach().abs() * _as_weight(sums.pop(name).sqrt(), p)}
                check_scores(self.criterion, scores, {name: p})
                if self.baseline == "invert":
                    scores = baselines.invert(scores)
                mask = masks[name].to(p.device)
                new[name] = self.pattern.select(scores, {name: mask}, sparsities[name], scope, self.layer_rates)[name]
                apply_masks([p], [new[name]])  # the next layers' inputs come from the pruned layer
                new[name] = new[name].to(masks[name].device)

        walk(model, {n: params[n] for n in masks}, batches, summing(sums), prune, self.calibration.device)
        return {n: new[n] for n in masks}
