"""The structural pruner: whole channels, filters and attention heads, grouped by torch-pruning's dependency graph."""

from typing import Callable, Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from prunelab.errors import ConfigError
from prunelab.models.attention import SelfAttention, split_attention
from prunelab.modes import eval_mode
from prunelab.pruning.contract import Pruner
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.gradient import summed_gradients
from prunelab.pruning.masks import PRUNABLE_LAYERS, Masks, apply_masks, prunable_parameters
from prunelab.pruning.select import ChannelScope, check_scope
from prunelab.pruning.structural.adapter import (
    ChannelGraph,
    ranks_bn_scales,
    reads_fisher,
    reads_gradients,
    remove_groups,
)
from prunelab.pruning.structural.scorer import ChannelScorer
from prunelab.pruning.structural.support import check_batchnorm, check_model
from prunelab.pruning.structural.surgery import refresh_attributes, removal_masks, timm_attention


class StructuralPruner(Pruner):
    """Prunes whole channels (filters, hidden units, attention heads) with every layer coupled to them.

    `importance` scores the channels of a torch-pruning group (e.g. `tp.importance.GroupMagnitudeImportance(p=1)`).
    A target is the fraction of the DENSE model's channels pruned, in every layer (`scope="layer"`) or over
    all layers ranked together (`"global"`); no layer loses more than `max_layer_ratio` (higher targets are
    capped there), and channel counts stay multiples of `round_to`. `exclude` (fnmatch over parameter names)
    and the output layer keep their output channels. `remove=True` removes the channels, so parameters, MACs
    and latency drop; `remove=False` zeroes them with masks instead. `num_batches` batches of training loss
    gradients are accumulated before scoring (Taylor). `bn_l1` is network slimming's L1 penalty on
    BatchNorm scales during dense training. Vision transformers lose whole heads; head size is kept.
    """

    def __init__(
        self,
        importance: Callable,
        scope: ChannelScope = "layer",
        max_layer_ratio: float = 1.0,
        round_to: int | None = None,
        exclude: Sequence[str] = (),
        remove: bool = True,
        num_batches: int = 0,
        bn_l1: float = 0.0,
    ):
        _check(importance, scope, max_layer_ratio, round_to, num_batches, bn_l1)
        self.importance, self.scope, self.max_layer_ratio, self.round_to = importance, scope, max_layer_ratio, round_to
        self.exclude, self.remove, self.num_batches, self.bn_l1 = tuple(exclude), remove, num_batches, bn_l1
        self.history: list = []  # torch-pruning's record of the removals, replayable on the dense model
        self._graph: ChannelGraph | None = None

    def parameters(self, model: nn.Module) -> dict[str, nn.Parameter]:
        """Every parameter (removal touches weights, biases and norms alike); a ConfigError when nothing is prunable
        or the model's family cannot be pruned structurally."""
        check_model(model)
        if not prunable_parameters(model, self.exclude):
            raise ConfigError("pruning.exclude", f"no layer left to prune after excluding {list(self.exclude)}"
                              " and the output layer", "exclude fewer layers")
        if ranks_bn_scales(self.importance) or self.bn_l1:
            check_batchnorm(model)
        return dict(model.named_parameters())

    def weights(self, model: nn.Module) -> dict[str, nn.Parameter]:
        """The prunable weights (Linear and Conv weights less `exclude` and the output layer): what
        `weight_sparsity` counts, while masks cover every parameter."""
        return prunable_parameters(model, self.exclude)

    def prune(self, model: nn.Module, masks: Masks, target: float, ctx: ScoreContext) -> Masks:
        """Prune channels until `target` of the dense model's are gone; masks of zeroed entries (none if removed)."""
        seed = int(torch.randint(2**31 - 1, (1,), generator=ctx.generator))
        with torch.random.fork_rng(devices=[]):  # random importances follow the run's seed
            torch.manual_seed(seed)
            if self.num_batches:
                _load_gradients(model, ctx, self.num_batches, squared=reads_fisher(self.importance))
            with eval_mode(model):
                graph = self._graph_of(model, masks, ctx)
                ratio = min(target, self.max_layer_ratio)
                if self.scope == "global":
                    ratio = min(ratio, _attainable(graph))
                groups = graph.select(ratio)
        if self.remove:
            remove_groups(groups)
            refresh_attributes(model)
            self.history = graph.history()
            new = {}
        else:
            new = _keep_masked(model, removal_masks(model, groups), masks)
            params = dict(model.named_parameters())
            apply_masks([params[n] for n in new], list(new.values()))
        model.zero_grad(set_to_none=True)
        return new

    @torch.no_grad()
    def dense_penalty(self, model: nn.Module) -> None:
        """Add `bn_l1 * sign(scale)` to the gradient of every BatchNorm scale (Liu et al. 2017)."""
        if not self.bn_l1:
            return
        for m in model.modules():
            if isinstance(m, _BatchNorm) and m.weight is not None and m.weight.grad is not None:
                m.weight.grad.add_(torch.sign(m.weight), alpha=self.bn_l1)

    def removal(self) -> dict:
        """What rebuilds the pruned model from the dense one and prunes on from there (`replay`): torch-pruning's
        removal history and the dense channel counts of its ranking scopes, which targets are fractions of."""
        if not self.history:
            return {}
        return {"history": list(self.history), "scope_channels": self._graph.scope_channels()}

    def replay(self, model: nn.Module, removal: dict, example: torch.Tensor) -> None:
        """Remove from the dense `model` the channels `removal` (from `removal()`) records: a resumed run."""
        with eval_mode(model):
            graph = self._bind(model, {}, example)
        history = [list(step) for step in removal["history"]]  # a copy: torch-pruning extends the list it is given
        graph.replay(history, removal["scope_channels"])
        refresh_attributes(model)
        for m in model.modules():  # the head counts torch-pruning would have updated while removing
            if isinstance(m, SelfAttention):
                graph.set_heads(m.qkv, m.num_heads)
        self.history = graph.history()

    def _graph_of(self, model: nn.Module, masks: Masks, ctx: ScoreContext) -> ChannelGraph:
        # Removal keeps one graph per model: it remembers the dense widths that targets refer to.
        if self.remove and self._graph is not None and self._graph.model is model:
            return self._graph
        return self._bind(model, masks, next(ctx.inputs())[:1])

    def _bind(self, model: nn.Module, masks: Masks, example: torch.Tensor) -> ChannelGraph:
        """A channel graph over `model` as it is now, kept in `_graph`."""
        split_attention(model)
        example = example.to(next(model.parameters()).device)
        kept = {id(p) for p in prunable_parameters(model, self.exclude).values()}
        ignored = [m for m in model.modules() if isinstance(m, PRUNABLE_LAYERS) and id(m.weight) not in kept]
        names = {id(m): f"{n}.weight" for n, m in model.named_modules()}
        keep = 1.0 - self.max_layer_ratio if self.scope == "global" else None
        scorer = ChannelScorer(self.importance, masks, names, keep, self.round_to)
        heads = {m.qkv: m.num_heads for m in model.modules() if isinstance(m, (SelfAttention, *timm_attention()))}
        self._graph = ChannelGraph(model, example, scorer, global_pruning=self.scope == "global",
                                   ignored_layers=ignored, round_to=self.round_to, num_heads=heads)
        scorer.graph = self._graph
        return self._graph


def _attainable(graph: ChannelGraph) -> float:
    # A pass at ratio 0 prunes nothing but lets the scorer count the channels max_layer_ratio protects;
    # asking for more than the rest would select every channel of some group, and torch-pruning skips those.
    graph.importance.protected = 0
    graph.select(0.0)
    total = graph.global_channels()
    return 1.0 - graph.importance.protected / total if total else 0.0


def _load_gradients(model: nn.Module, ctx: ScoreContext, num_batches: int, squared: bool) -> None:
    """Put the loss gradients of `num_batches` training batches (`summed_gradients`) into `.grad`, where
    torch-pruning's importances read them."""
    model.zero_grad(set_to_none=True)
    params = [p for p in model.parameters() if p.requires_grad]
    for p, g in zip(params, summed_gradients(model, params, ctx, num_batches, squared=squared)):
        p.grad = g


def _keep_masked(model: nn.Module, new: Masks, old: Masks) -> Masks:
    """`new` with what `old` masked still masked (entries of parameters that still exist)."""
    shapes = {n: p.shape for n, p in model.named_parameters()}
    for name, mask in old.items():
        if name in new and new[name].shape == mask.shape:
            new[name] &= mask.to(new[name].device)
        elif not mask.all() and shapes.get(name) == mask.shape:
            new[name] = mask
    return new


def _check(importance, scope, max_layer_ratio, round_to, num_batches, bn_l1) -> None:
    check_scope(scope)
    if not 0.0 < max_layer_ratio <= 1.0:
        raise ConfigError("pruning.max_layer_ratio", f"{max_layer_ratio} is not in (0, 1]", "use e.g. 0.9")
    if round_to is not None and round_to < 1:
        raise ConfigError("pruning.round_to", f"{round_to} is not a positive channel count", "use null or e.g. 8")
    if num_batches < 0 or bn_l1 < 0:
        raise ConfigError("pruning", f"num_batches={num_batches}, bn_l1={bn_l1} must be >= 0", "use 0 or more")
    if reads_gradients(importance) and num_batches < 1:
        raise ConfigError("pruning.num_batches", f"{type(importance).__name__} needs loss gradients, got 0 batches",
                          "set pruning.num_batches to 1 or more, e.g. 10")
