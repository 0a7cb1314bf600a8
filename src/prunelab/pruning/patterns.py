"""Sparsity patterns: which weights are kept or pruned together.

Every pattern works on a weight's reduction view (out, K, in): a Linear weight is (out, 1, in); a
convolution weight (out, in, *kernel) becomes (out, K, in), K its kernel positions, so "along the
input dimension" means the input channels at one kernel position (the layout of sparse tensor cores).
Scores of any criterion come in, bool masks (True = kept) go out; pruned weights never revive.
"""

import logging
from collections.abc import Mapping, Sequence

import torch

from prunelab.errors import ConfigError
from prunelab.pruning.masks import Masks
from prunelab.pruning.select import select

log = logging.getLogger(__name__)


def reduction_view(t: torch.Tensor) -> torch.Tensor:
    """`t` (out, in, *kernel) as (out, K, in): the input channels of each kernel position last."""
    return t.flatten(2).transpose(1, 2) if t.dim() > 2 else t.unsqueeze(1)


def from_reduction_view(v: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """The inverse of `reduction_view` for a tensor of `shape`."""
    if len(shape) == 2:
        return v.squeeze(1)
    return v.transpose(1, 2).reshape(shape)


class Unstructured:
    """Any weight on its own: selection as configured by scope (see `select`)."""

    def misfits(self, shapes: Mapping[str, torch.Size]) -> list[str]:
        return []

    def select(self, scores, masks: Masks, target: float, scope: str, rates=None) -> Masks:
        return select(scores, masks, target, scope, rates)


class NM:
    """N:M (Mishra et al. 2021): in every group of `m` consecutive weights along the input dimension, `n` are kept.

    The sparsity is 1 - n/m in every layer whatever the target: the nearest the pattern allows. A target
    that differs is logged with the sparsity reached (the results rows report it as `sparsity`). Weights
    already pruned stay pruned, so a group that lost more than m - n before keeps fewer than n.
    """

    def __init__(self, n: int, m: int):
        self.n, self.m = n, m

    def misfits(self, shapes: Mapping[str, torch.Size]) -> list[str]:
        """Names of the weights whose input dimension is not a multiple of m."""
        return [name for name, s in shapes.items() if s[1] % self.m]

    def select(self, scores, masks: Masks, target: float, scope: str, rates=None) -> Masks:
        reached = 1.0 - self.n / self.m
        if abs(target - reached) > 1e-9:
            log.warning("pattern %d:%d prunes %.4f of every layer, not the target %.4f", self.n, self.m, reached, target)
        return {name: self._keep(scores[name], mask) for name, mask in masks.items()}

    def _keep(self, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        s = reduction_view(scores.float().masked_fill(~mask, float("-inf")))
        groups = s.reshape(*s.shape[:2], -1, self.m)
        keep = torch.zeros_like(groups, dtype=torch.bool)
        keep.scatter_(-1, groups.topk(self.n, dim=-1).indices, True)
        return from_reduction_view(keep.reshape(s.shape), scores.shape) & mask


class Block:
    """h x w blocks of the (out, in) matrix at each kernel position, kept or pruned whole.

    A block scores the sum of its weights' scores; selection (scope, rates) runs on blocks, so a
    target is met to the nearest whole block (per layer with layer scope, over all blocks with global).
    """

    def __init__(self, h: int, w: int):
        self.h, self.w = h, w

    def misfits(self, shapes: Mapping[str, torch.Size]) -> list[str]:
        """Names of the weights whose output or input dimension the block does not divide."""
        return [name for name, s in shapes.items() if s[0] % self.h or s[1] % self.w]

    def select(self, scores, masks: Masks, target: float, scope: str, rates=None) -> Masks:
        blocks = {name: self.pool(scores[name].float()) for name in masks}
        alive = {name: self.pool(m.float()) > 0 for name, m in masks.items()}
        kept = select(blocks, alive, target, scope, rates, shapes={name: m.shape for name, m in masks.items()})
        return {name: self.expand(kept[name], m.shape) & m for name, m in masks.items()}

    def pool(self, t: torch.Tensor) -> torch.Tensor:
        """The sums of `t` over its (out/h, K, in/w) blocks."""
        v = reduction_view(t)
        return v.reshape(v.shape[0] // self.h, self.h, v.shape[1], v.shape[2] // self.w, self.w).sum(dim=(1, 4))

    def expand(self, blocks: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        """Block masks back at weight resolution."""
        v = blocks.repeat_interleave(self.h, 0).repeat_interleave(self.w, 2)
        return from_reduction_view(v, shape)


def parse_pattern(pattern: str, block_shape: Sequence[int]):
    """The pattern named by `pattern`: "unstructured", "n:m" (e.g. "2:4") or "block" (of `block_shape`)."""
    if pattern == "unstructured":
        return Unstructured()
    if pattern == "block":
        if len(block_shape) != 2 or min(block_shape) < 1:
            raise ConfigError("pruning.block_shape", f"{list(block_shape)} is not [h, w] of positive ints",
                              "use e.g. [4, 4]")
        return Block(*(int(d) for d in block_shape))
    n, sep, m = str(pattern).partition(":")
    if not (sep and n.isdigit() and m.isdigit() and 0 < int(n) < int(m)):
        raise ConfigError("pruning.pattern", f"unknown pattern {pattern!r}",
                          "use unstructured, block, or n:m with 0 < n < m, quoted in YAML (e.g. '2:4')")
    return NM(int(n), int(m))
