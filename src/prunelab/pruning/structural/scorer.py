"""Channel scores for torch-pruning: an importance, with what the masks hold and the layers' floors on top."""

import math
from typing import Callable

import torch

from prunelab.pruning.masks import Masks
from prunelab.pruning.structural.adapter import ChannelGraph


class ChannelScorer:
    """Wraps a torch-pruning importance with two constraints on the channels of each group.

    Channels the masks already zero score lowest, so they are chosen again (`remove=False`). With `keep`
    set (global scope) the best positions of each layer score highest, so no layer keeps fewer than
    `keep` of its dense channels; `protected` counts them, which bounds the attainable global ratio.
    """

    def __init__(self, importance: Callable, masks: Masks, weight_names: dict, keep: float | None,
                 round_to: int | None):
        self.importance, self.masks, self.weight_names = importance, masks, weight_names
        self.keep, self.round_to = keep, round_to
        self.graph: ChannelGraph | None = None  # the graph that calls this scorer
        self.protected = 0

    def __call__(self, group):
        imp = self.importance(group)
        if imp is None:
            return None
        imp = torch.nan_to_num(imp.detach().float().clone())
        masked = self._masked(group, len(imp))
        if masked is not None:
            imp[masked.to(imp.device)] = -math.inf
        if self.keep is None or self.graph.is_attention(group):  # heads are ranked whole, by torch-pruning
            return imp
        return self._protect(group, imp)

    def _masked(self, group, n: int) -> torch.Tensor | None:
        module, out, idxs = self.graph.root(group)
        mask = self.masks.get(self.weight_names.get(id(module)))
        if mask is None:
            return None
        kept = mask.transpose(0, 0 if out else 1).flatten(1).any(1)
        return ~kept[list(idxs)] if len(kept) == n else None

    def _protect(self, group, imp: torch.Tensor) -> torch.Tensor:
        module, out, _ = self.graph.root(group)
        dense = self.graph.dense_width(module, out)
        groups = self.graph.channel_groups(group)  # grouped convs prune the same position in every group
        floor = max(1, math.ceil(dense // groups * self.keep - 1e-9))
        if self.round_to and groups == 1:
            floor = math.ceil(floor / self.round_to) * self.round_to
        positions = imp.view(groups, -1)
        best = positions.mean(0).topk(min(floor, positions.shape[1])).indices
        positions[:, best] = math.inf
        self.protected += len(best)
        return positions.reshape(-1)
