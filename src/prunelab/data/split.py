"""Seeded splits of a data set's indices, and standardisation with the training split's statistics."""

from dataclasses import dataclass

import torch
from torch import Tensor

from prunelab.data.settings import check_at_least, check_fraction


def split_indices(n: int, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Split range(n) into (kept, held out) with a fixed permutation; `fraction` of n is held out."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    held = round(n * fraction)
    return perm[held:], perm[:held]


@dataclass(frozen=True)
class Split:
    """The validation split: `val_fraction` of the training data, held out by a permutation seeded with `split_seed`;
    `limit` (`dataset.limit` of the data sets held in memory) keeps at most that many of the rest for training, a
    choice fixed by `split_seed`: validation and test stay whole."""

    val_fraction: float
    split_seed: int
    limit: int | None = None

    def check(self) -> None:
        """Raise ConfigError unless 0 < val_fraction < 1 and the limit, if any, is at least 1."""
        check_fraction("dataset.val_fraction", self.val_fraction)
        if self.limit is not None:
            check_at_least("dataset.limit", self.limit, 1)

    def indices(self, n: int) -> tuple[Tensor, Tensor]:
        """(train, validation) indices into n training samples."""
        train, val = split_indices(n, self.val_fraction, self.split_seed)
        return take(train, self.limit, self.split_seed), val


def folder_splits(
    n_root: int, n_test_root: int | None, val_fraction: float, test_fraction: float, seed: int
) -> dict[str, tuple[str, Tensor]]:
    """(folder, indices) of each split: "root" or "test_root", and indices into that folder's files.

    The test split is all of test_root, or `test_fraction` of root when `n_test_root` is None;
    validation is `val_fraction` of the rest of root. Permutations are seeded with `seed`.
    """
    if n_test_root is None:
        rest, test_idx = split_indices(n_root, test_fraction, seed)
        test = ("root", test_idx)
    else:
        rest, test = torch.arange(n_root), ("test_root", torch.arange(n_test_root))
    train_idx, val_idx = split_indices(len(rest), val_fraction, seed)
    return {"train": ("root", rest[train_idx]), "val": ("root", rest[val_idx]), "test": test}


def take(idx: Tensor, limit: int | None, seed: int) -> Tensor:
    """At most `limit` of `idx`, a random choice fixed by `seed`; all of it, in order, when `limit` is None."""
    if limit is None:
        return idx
    return idx[torch.randperm(len(idx), generator=torch.Generator().manual_seed(seed))[:limit]]


def standardise(train: Tensor, *others: Tensor) -> list[Tensor]:
    """Scale N,C,H,W tensors to zero mean, unit std per channel, using statistics of `train` only."""
    mean = train.mean(dim=(0, 2, 3), keepdim=True)
    std = train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-8)
    return [(x - mean) / std for x in (train, *others)]
