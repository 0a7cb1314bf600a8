"""Tiny models and contexts for the pruning unit tests."""

import torch
import torch.nn.functional as F
from torch import nn

from prunelab.pruning import ScoreContext


def conv_net() -> nn.Module:
    """A conv (8 -> 8 channels) and two Linears whose shapes hold 2:4, 4:8 and 4x4 blocks; a 10-way output."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 32), nn.ReLU(),
                         nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10))


def image_batches(n: int = 3, size: int = 16, seed: int = 1) -> list:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 8, 4, 4, generator=g), torch.randint(0, 10, (size,), generator=g)) for _ in range(n)]


def ctx(data=(), seed: int = 0) -> ScoreContext:
    return ScoreContext(batches=lambda: iter(data), loss=F.cross_entropy, generator=torch.Generator().manual_seed(seed))
