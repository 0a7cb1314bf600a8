"""The one place that talks to torch-pruning's pruner (`BasePruner`, once `MetaPruner`) and `DependencyGraph`.

Public API where torch-pruning has one (`step`, `reset`, `pruning_history`, `load_pruning_history`,
`DependencyGraph.is_out_channel_pruning_fn`); the members it keeps to itself are read and written only by the
small named methods of `ChannelGraph`, so an upgrade of torch-pruning is checked here and nowhere else.
"""

import contextlib
import logging
import threading
from typing import Callable

import torch
import torch_pruning as tp
from torch import nn

from prunelab.modes import eval_mode

log = logging.getLogger(__name__)

SLOW_GRAPH_S = 5.0  # a dependency graph still building after this long is reported in the log


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


class FilterL1Norm(tp.importance.GroupMagnitudeImportance):
    """Li et al. 2017's filter norm: a channel scores the sum of |w| of its filter in the group's first layer, the
    layer whose output channels the group prunes (torch-pruning's "standard L1-norm of the first layer"), not
    normalised; the group's other layers (next layers' inputs, BatchNorm) do not count."""

    def __init__(self):
        super().__init__(p=1, group_reduction="first", normalizer=None)


def reads_gradients(importance: Callable) -> bool:
    """Whether a torch-pruning importance reads loss gradients from `.grad` (Taylor, Hessian)."""
    return isinstance(importance, (tp.importance.GroupTaylorImportance, tp.importance.GroupHessianImportance))


def reads_fisher(importance: Callable) -> bool:
    """torch-pruning's Hessian (OBD) importance reads squared gradients from `.grad`; Taylor reads plain ones."""
    return isinstance(importance, tp.importance.GroupHessianImportance)


def ranks_bn_scales(importance: Callable) -> bool:
    """Whether a torch-pruning importance ranks channels by their BatchNorm scales."""
    return isinstance(importance, tp.importance.BNScaleImportance)


def remove_groups(groups: list) -> None:
    """Remove the channels of `groups` (from `ChannelGraph.select`) from the model, recording them in its history."""
    for group in groups:
        group.prune()


def replay_history(model: nn.Module, example: torch.Tensor, history: list) -> None:
    """Remove from the dense `model` the channels a pruner's `history` records (a saved model's); the graph is
    traced in eval mode."""
    with eval_mode(model):
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
    graph.load_pruning_history(history)


class ChannelGraph:
    """torch-pruning's pruner over `model` as it was when built: its dependency graph, and the dense widths that
    targets are fractions of. `importance` scores each group's channels (higher kept); `num_heads` maps the qkv
    layers of attention to their head counts, whose heads are then removed whole."""

    def __init__(self, model: nn.Module, example: torch.Tensor, importance: Callable, *, global_pruning: bool,
                 ignored_layers: list, round_to: int | None, num_heads: dict):
        with _reporting_slow(f"structural pruning: building the dependency graph of {type(model).__name__}"):
            self._pruner = tp.pruner.BasePruner(
                model, example, importance=importance, global_pruning=global_pruning, ignored_layers=ignored_layers,
                round_to=round_to, num_heads=num_heads, prune_num_heads=bool(num_heads),
                prune_head_dims=not num_heads,
                in_channel_groups={}, out_channel_groups={},  # fresh dicts: torch-pruning mutates its defaults
            )

    @property
    def model(self) -> nn.Module:
        return self._pruner.model

    @property
    def importance(self) -> Callable:
        return self._pruner.importance

    def select(self, ratio: float) -> list:
        """The groups to remove so that `ratio` of the dense channels (and heads) are gone."""
        p = self._pruner
        head_ratio = ratio
        if p.num_heads and not p.global_pruning:  # per layer, torch-pruning counts heads left, not dense ones
            qkv = next(iter(p.num_heads))
            head_ratio = max(0.0, 1.0 - (1.0 - ratio) * p.init_num_heads[qkv] / p.num_heads[qkv])
        p.per_step_pruning_ratio = [0.0, ratio]
        p.per_step_head_pruning_ratio = [0.0, head_ratio]
        p.reset()
        return list(p.step(interactive=True))

    def root(self, group) -> tuple[nn.Module, bool, list]:
        """The layer a group is rooted at, whether its output channels are pruned (else its input channels), and
        the group's channel indices."""
        dep, idxs = group[0]
        return dep.target.module, self._pruner.DG.is_out_channel_pruning_fn(dep.handler), idxs

    def is_attention(self, group) -> bool:
        """Whether `group` holds the heads of an attention layer (torch-pruning ranks those whole)."""
        return self._pruner._is_atten_group(group)[0]

    def channel_groups(self, group) -> int:
        """How many channel groups (grouped convolutions, heads) `group` prunes the same position of."""
        return self._pruner._get_channel_groups(group)

    def dense_width(self, module: nn.Module, out: bool) -> int:
        """The output (`out`) or input channels `module` had when the graph was built."""
        return (self._pruner.layer_init_out_ch if out else self._pruner.layer_init_in_ch)[module]

    def scope_channels(self) -> dict[str, int]:
        """The dense channel count of every ranking scope, filled by the first `select`."""
        return dict(self._pruner._scope_initial_channels)

    def global_channels(self) -> int:
        """The dense channels ranked together with global scope (0 before the first `select`)."""
        return self._pruner._scope_initial_channels.get("DEFAULT_SCOPE", 0)

    def history(self) -> list:
        """torch-pruning's record of the channels removed, which it extends as it removes more."""
        return self._pruner.pruning_history()

    def replay(self, history: list, scope_channels: dict[str, int]) -> None:
        """Remove the channels `history` records, with the dense channel counts (`scope_channels`) of the run."""
        self._pruner._scope_initial_channels = dict(scope_channels)
        self._pruner.load_pruning_history(history)

    def set_heads(self, qkv: nn.Module, num_heads: int) -> None:
        """Set the head count of `qkv`, as torch-pruning updates it when removing heads itself."""
        self._pruner.num_heads[qkv] = self._pruner.out_channel_groups[qkv] = num_heads
