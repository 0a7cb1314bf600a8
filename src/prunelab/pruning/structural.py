"""Structural pruning: whole channels, filters and attention heads, grouped by torch-pruning's dependency graph."""

import contextlib
import logging
import math
import threading
from typing import Callable, Sequence

import torch
import torch_pruning as tp
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from prunelab.errors import ConfigError
from prunelab.models.attention import SelfAttention, split_attention
from prunelab.modes import eval_mode
from prunelab.pruning import distributed
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.gradient import scoring_mode
from prunelab.pruning.masks import PRUNABLE_LAYERS, Masks, prunable_parameters
from prunelab.pruning.select import check_scope
from prunelab.pruning.surgery import refresh_attributes, removal_masks, timm_attention

log = logging.getLogger(__name__)

_UNSTRUCTURED = "use an unstructured method (e.g. pruning=magnitude) or another model"
# Model families whose channels torch-pruning cannot remove, by class, with why; measured over torchvision's
# classification models by tests/structural_zoo.py (docs/structural_zoo.md).
REFUSED = {
    "ShuffleNetV2": "its channel shuffle splits channels into groups that torch-pruning's dependency graph does "
                    "not follow (removal ends in a division by zero)",
    "SwinTransformer": "torch-pruning's dependency graph of its shifted-window attention does not finish "
                       "(swin_t stopped at its recursion limit after 10 minutes, swin_v2_t ran past 10 minutes)",
    "MaxVit": "torch-pruning does not finish with its window and grid attention, whose relative position bias "
              "tables it cannot place (maxvit_t stopped after 5 minutes; convnets of its size take ~10 s)",
}
# Larger models are refused for their size: the sweep does not check them (vit_h_14, regnet_y_128gf).
MAX_PARAMETERS = 500_000_000
SLOW_GRAPH_S = 5.0  # a dependency graph still building after this long is reported in the log


def check_model(model: nn.Module) -> None:
    """A ConfigError naming `model` when it belongs to a family (or size) structural pruning refuses."""
    name = type(model).__name__
    if name in REFUSED:
        raise ConfigError("model", f"{name} cannot be pruned structurally: {REFUSED[name]}", _UNSTRUCTURED)
    count = sum(p.numel() for p in model.parameters())
    if count > MAX_PARAMETERS:
        raise ConfigError("model", f"{name} has {count / 1e6:.0f}M parameters, over the {MAX_PARAMETERS / 1e6:.0f}M"
                          " structural pruning accepts (models this size are not checked)", _UNSTRUCTURED)


@contextlib.contextmanager
def _reporting_slow(what: str, after: float = SLOW_GRAPH_S):
    """Log that `what` is still running when it takes longer than `after` seconds."""
    timer = threading.Timer(after, log.info, (f"{what}: still running after {after:g} s (large models take minutes)",))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def accumulate_gradients(model: nn.Module, ctx: ScoreContext, num_batches: int, squared: bool = False) -> None:
    """Sum the loss gradients of the first `num_batches` training batches of every rank into `.grad`.

    `squared`: the mean of the squared per-sample gradients instead (the empirical Fisher diagonal that
    torch-pruning's Hessian importance reads from `.grad`, as Optimal Brain Damage's Hessian diagonal),
    taken in eval mode.
    """
    model.zero_grad(set_to_none=True)
    device = next(model.parameters()).device
    params = [p for p in model.parameters() if p.requires_grad]
    fisher, samples = [torch.zeros_like(p) for p in params], 0
    for i, (x, y) in enumerate(ctx.batches()):
        if i == num_batches:
            break
        x, y = x.to(device), y.to(device)
        if not squared:
            ctx.loss(model(x), y).backward()
            continue
        with scoring_mode(model):  # eval mode: BatchNorm cannot normalise, and must not learn from, one sample
            for xi, yi in zip(x.split(1), y.split(1)):
                grads = torch.autograd.grad(ctx.loss(model(xi), yi), params, allow_unused=True, materialize_grads=True)
                torch._foreach_add_(fisher, torch._foreach_mul(grads, grads))
                samples += 1
    if squared:
        for p, f in zip(params, fisher):
            p.grad = f / max(samples, 1)
    # every rank must remove the same channels
    distributed.all_reduce_sum([p.grad for p in model.parameters() if p.grad is not None])


class _Scorer:
    """Wraps a torch-pruning importance with two constraints on the channels of each group.

    Channels the masks already zero score lowest, so they are chosen again (`remove=False`). With `keep`
    set (global scope) the best positions of each layer score highest, so no layer keeps fewer than
    `keep` of its dense channels; `protected` counts them, which bounds the attainable global ratio.
    """

    def __init__(self, importance: Callable, masks: Masks, weight_names: dict, keep: float | None,
                 round_to: int | None):
        self.importance, self.masks, self.weight_names = importance, masks, weight_names
        self.keep, self.round_to = keep, round_to
        self.meta = None  # the MetaPruner that calls this scorer
        self.protected = 0

    def __call__(self, group):
        imp = self.importance(group)
        if imp is None:
            return None
        imp = torch.nan_to_num(imp.detach().float().clone())
        masked = self._masked(group, len(imp))
        if masked is not None:
            imp[masked.to(imp.device)] = -math.inf
        if self.keep is None or self.meta._is_atten_group(group)[0]:  # heads are ranked whole, by torch-pruning
            return imp
        return self._protect(group, imp)

    def _masked(self, group, n: int) -> torch.Tensor | None:
        dep, idxs = group[0]
        mask = self.masks.get(self.weight_names.get(id(dep.target.module)))
        if mask is None:
            return None
        dim = 0 if self.meta.DG.is_out_channel_pruning_fn(dep.handler) else 1
        kept = mask.transpose(0, dim).flatten(1).any(1)
        return ~kept[list(idxs)] if len(kept) == n else None

    def _protect(self, group, imp: torch.Tensor) -> torch.Tensor:
        dep = group[0].dep
        out = self.meta.DG.is_out_channel_pruning_fn(dep.handler)
        dense = (self.meta.layer_init_out_ch if out else self.meta.layer_init_in_ch)[dep.target.module]
        groups = self.meta._get_channel_groups(group)  # grouped convs prune the same position in every group
        floor = max(1, math.ceil(dense // groups * self.keep - 1e-9))
        if self.round_to and groups == 1:
            floor = math.ceil(floor / self.round_to) * self.round_to
        positions = imp.view(groups, -1)
        best = positions.mean(0).topk(min(floor, positions.shape[1])).indices
        positions[:, best] = math.inf
        self.protected += len(best)
        return positions.reshape(-1)


class StructuralPruner:
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
        scope: str = "layer",
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
        self._meta = None

    def parameters(self, model: nn.Module) -> dict[str, nn.Parameter]:
        """Every parameter (removal touches weights, biases and norms alike); a ConfigError when nothing is prunable
        or the model's family cannot be pruned structurally."""
        check_model(model)
        if not prunable_parameters(model, self.exclude):
            raise ConfigError("pruning.exclude", f"no layer left to prune after excluding {list(self.exclude)}"
                              " and the output layer", "exclude fewer layers")
        if (isinstance(self.importance, tp.importance.BNScaleImportance) or self.bn_l1) and not any(
                isinstance(m, _BatchNorm) for m in model.modules()):
            raise ConfigError("pruning", f"{model.__class__.__name__} has no BatchNorm scales to rank or penalise",
                              "use a model with BatchNorm (e.g. model=digits_cnn) or pruning=l1_filter")
        return dict(model.named_parameters())

    def prune(self, model: nn.Module, masks: Masks, target: float, ctx: ScoreContext) -> Masks:
        """Prune channels until `target` of the dense model's are gone; masks of zeroed entries (none if removed)."""
        seed = int(torch.randint(2**31 - 1, (1,), generator=ctx.generator))
        with torch.random.fork_rng(devices=[]):  # random importances follow the run's seed
            torch.manual_seed(seed)
            if self.num_batches:
                accumulate_gradients(model, ctx, self.num_batches, squared=_reads_fisher(self.importance))
            with eval_mode(model):
                meta = self._meta_pruner(model, masks, ctx)
                ratio = min(target, self.max_layer_ratio)
                if self.scope == "global":
                    ratio = min(ratio, self._attainable(meta))
                self._set_ratio(meta, ratio)
                groups = list(meta.step(interactive=True))
        if self.remove:
            for group in groups:
                group.prune()
            refresh_attributes(model)
            self.history = meta.DG.pruning_history()
            new = {}
        else:
            new = _keep_masked(model, removal_masks(model, groups), masks)
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
        return {"history": list(self.history), "scope_channels": dict(self._meta._scope_initial_channels)}

    def replay(self, model: nn.Module, removal: dict, example: torch.Tensor) -> None:
        """Remove from the dense `model` the channels `removal` (from `removal()`) records: a resumed run."""
        with eval_mode(model):
            meta = self._bind(model, {}, example)
        meta._scope_initial_channels = dict(removal["scope_channels"])
        meta.DG.load_pruning_history([list(step) for step in removal["history"]])  # torch-pruning extends the list
        refresh_attributes(model)
        for m in model.modules():  # the head counts torch-pruning would have updated while removing
            if isinstance(m, SelfAttention):
                meta.num_heads[m.qkv] = meta.out_channel_groups[m.qkv] = m.num_heads
        self.history = meta.DG.pruning_history()

    def _meta_pruner(self, model: nn.Module, masks: Masks, ctx: ScoreContext):
        # Removal keeps one MetaPruner per model: it remembers the dense widths that targets refer to.
        if self.remove and self._meta is not None and self._meta.model is model:
            return self._meta
        return self._bind(model, masks, next(iter(ctx.batches()))[0][:1])

    def _bind(self, model: nn.Module, masks: Masks, example: torch.Tensor):
        """A MetaPruner over `model` as it is now, kept in `_meta`."""
        split_attention(model)
        example = example.to(next(model.parameters()).device)
        kept = {id(p) for p in prunable_parameters(model, self.exclude).values()}
        ignored = [m for m in model.modules() if isinstance(m, PRUNABLE_LAYERS) and id(m.weight) not in kept]
        names = {id(m): f"{n}.weight" for n, m in model.named_modules()}
        keep = 1.0 - self.max_layer_ratio if self.scope == "global" else None
        scorer = _Scorer(self.importance, masks, names, keep, self.round_to)
        heads = {m.qkv: m.num_heads for m in model.modules() if isinstance(m, (SelfAttention, *timm_attention()))}
        with _reporting_slow(f"structural pruning: building the dependency graph of {type(model).__name__}"):
            self._meta = tp.pruner.MetaPruner(
                model, example, importance=scorer, global_pruning=self.scope == "global", ignored_layers=ignored,
                round_to=self.round_to, num_heads=heads, prune_num_heads=bool(heads), prune_head_dims=not heads,
                in_channel_groups={}, out_channel_groups={},  # fresh dicts: torch-pruning mutates its defaults
            )
        scorer.meta = self._meta
        return self._meta

    def _attainable(self, meta) -> float:
        # A pass at ratio 0 prunes nothing but lets the scorer count the channels max_layer_ratio protects;
        # asking for more than the rest would select every channel of some group, and torch-pruning skips those.
        meta.importance.protected = 0
        self._set_ratio(meta, 0.0)
        list(meta.step(interactive=True))
        total = meta._scope_initial_channels.get("DEFAULT_SCOPE", 0)
        return 1.0 - meta.importance.protected / total if total else 0.0

    def _set_ratio(self, meta, ratio: float) -> None:
        head_ratio = ratio
        if meta.num_heads and self.scope == "layer":  # per layer, torch-pruning counts heads left, not dense ones
            qkv = next(iter(meta.num_heads))
            head_ratio = max(0.0, 1.0 - (1.0 - ratio) * meta.init_num_heads[qkv] / meta.num_heads[qkv])
        meta.per_step_pruning_ratio = [0.0, ratio]
        meta.per_step_head_pruning_ratio = [0.0, head_ratio]
        meta.reset()


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
    if isinstance(importance, (tp.importance.GroupTaylorImportance, tp.importance.GroupHessianImportance)) \
            and num_batches < 1:
        raise ConfigError("pruning.num_batches", f"{type(importance).__name__} needs loss gradients, got 0 batches",
                          "set pruning.num_batches to 1 or more, e.g. 10")


def _reads_fisher(importance) -> bool:
    """torch-pruning's Hessian (OBD) importance reads squared gradients from `.grad`; Taylor reads plain ones."""
    return isinstance(importance, tp.importance.GroupHessianImportance)
