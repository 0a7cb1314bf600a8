"""Small equal-size images in class folders, decoded once, cached on disk and served as whole batches."""

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from prunelab.data.augment import CropFlipBatches
from prunelab.data.base import BatchDataModule, NormalisedBatches, check_at_least
from prunelab.data.folder import FolderDataModule, class_folders, folder_splits
from prunelab.data.folder_cache import (
    cached_images,
    default_cache_dir,
    image_files,
    image_shape,
)


def take(idx: Tensor, limit: int | None, seed: int) -> Tensor:
    """At most `limit` of `idx`, a random choice fixed by `seed`; all of it, in order, when `limit` is None."""
    if limit is None:
        return idx
    return idx[torch.randperm(len(idx), generator=torch.Generator().manual_seed(seed))[:limit]]


class CachedFolderDataModule(CropFlipBatches, FolderDataModule, BatchDataModule):
    """Images of one size under `root/<class>/` (and `test_root`), decoded once into uint8 tensors.

    The decoded folders are cached in `cache_dir` (null: `default_cache_dir()`), keyed by each folder's file
    list and sizes, so later runs read them back without decoding. Batches are served whole from memory,
    scaled to [0, 1] and normalised with the per-channel `mean` and `std`; images are not resized. With
    `augment`, training batches get a random crop of the 4-pixel-padded image and a horizontal flip (the
    padding is 0 after normalisation, the mean colour, as for dataset=cifar10).
    `limit` keeps at most that many images of each split (train, val, test), chosen by `split_seed`.
    """

    def __init__(
        self,
        *args,
        mean: Sequence[float],
        std: Sequence[float],
        cache_dir: str | None = None,
        limit: int | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.mean, self.std, self.limit = tuple(mean), tuple(std), limit
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()

    def check(self) -> None:
        """Also lists the folders: a class folder without images or a file that is no image is an error."""
        super().check()
        if self.limit is not None:
            check_at_least("dataset.limit", self.limit, 1)
        files = {setting: image_files(folder, setting) for setting, folder in self.folders().items()}
        self.check_matches(image_shape(self.root / files["dataset.root"][0][0]), len(class_folders(self.root)))

    def prepare_data(self) -> None:
        """Decode and cache the folders that are not cached yet (once per machine)."""
        self.check()
        for setting, folder in self.folders().items():
            cached_images(folder, setting, self.cache_dir)

    def setup(self, stage: str | None = None) -> None:
        """Read the cached folders (decoding any not cached yet) and make the splits once."""
        if self.splits is not None:
            return
        self.check()
        images = {setting.removeprefix("dataset."): cached_images(folder, setting, self.cache_dir)
                  for setting, folder in self.folders().items()}
        n_test = len(images["test_root"][1]) if "test_root" in images else None
        splits = folder_splits(len(images["root"][1]), n_test, self.val_fraction, self.test_fraction, self.split_seed)
        self.splits = {}
        for split, (folder, idx) in splits.items():
            x, y = images[folder]
            idx = take(idx, self.limit, self.split_seed)
            self.splits[split] = NormalisedBatches(x[idx], y[idx], self.mean, self.std)
