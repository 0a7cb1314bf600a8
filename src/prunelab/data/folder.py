"""Any folder with one subfolder of images per class, read image by image with per-sample transforms."""

from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T
from torchvision.datasets import ImageFolder

from prunelab.data.base import (
    SeededShuffle,
    SplitDataModule,
    check_fraction,
    split_indices,
)
from prunelab.errors import ConfigError

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def class_folders(root: Path) -> list[str]:
    """Names of the subfolders of `root`, sorted as ImageFolder numbers them; [] when root is no folder."""
    return sorted(path.name for path in root.iterdir() if path.is_dir()) if root.is_dir() else []


def folder_transform(image_size: int, augment: bool) -> T.Compose:
    """PIL image -> normalised 3 x image_size x image_size tensor; random crop and flip when `augment`."""
    if augment:
        resize = [T.RandomResizedCrop(image_size), T.RandomHorizontalFlip()]
    else:
        resize = [T.Resize(image_size), T.CenterCrop(image_size)]
    return T.Compose([*resize, T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


class Transformed(Dataset):
    """The samples at `indices` of an (image, label) dataset, with `transform` applied to each image."""

    def __init__(self, dataset: Dataset, indices: Sequence[int], transform: T.Compose):
        self.dataset, self.indices, self.transform = dataset, list(indices), transform

    def __getitem__(self, i: int):
        image, label = self.dataset[self.indices[i]]
        return self.transform(image), label

    def __len__(self) -> int:
        return len(self.indices)


class ImageFolderDataModule(SplitDataModule):
    """Images under `root/<class>/`, resized and centre-cropped to `image_size`, normalised with ImageNet stats.

    The test split is the folder `test_root` (same class subfolders) or, when it is null, `test_fraction` of
    `root` held out by a permutation seeded with `split_seed`; validation is carved from the rest.
    With `augment`, training images get RandomResizedCrop and a horizontal flip instead.
    """

    def __init__(
        self,
        *args,
        root: str,
        image_size: int = 64,
        test_root: str | None = None,
        test_fraction: float = 0.2,
        augment: bool = False,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.root, self.image_size, self.augment = Path(root), image_size, augment
        self.test_root, self.test_fraction = Path(test_root) if test_root else None, test_fraction
        self.splits: dict[str, Transformed] | None = None

    def check(self) -> None:
        super().check()
        classes = class_folders(self.root)
        if len(classes) < 2:
            found = f"has {len(classes)} class subfolders" if self.root.is_dir() else "does not exist"
            raise ConfigError(
                "dataset.root",
                f"{self.root} {found}; at least 2 class subfolders are needed",
                "set dataset.root=<folder holding one subfolder of images per class>",
            )
        self.check_matches((3, self.image_size, self.image_size), len(classes))
        if self.test_root is None:
            check_fraction("dataset.test_fraction", self.test_fraction)
        elif class_folders(self.test_root) != classes:
            raise ConfigError(
                "dataset.test_root",
                f"the class subfolders of {self.test_root} differ from those of {self.root}",
                "point it at a folder with the same class subfolders, or set it to null to carve a test split",
            )

    def setup(self, stage: str | None = None) -> None:
        """Index the folders and make the splits once; later calls return at once."""
        if self.splits is not None:
            return
        self.check()
        evaluate = folder_transform(self.image_size, augment=False)
        full = ImageFolder(self.root)
        if self.test_root is None:
            rest, test_idx = split_indices(len(full), self.test_fraction, self.split_seed)
            test = Transformed(full, test_idx.tolist(), evaluate)
        else:
            rest, test_folder = torch.arange(len(full)), ImageFolder(self.test_root)
            test = Transformed(test_folder, range(len(test_folder)), evaluate)
        train_idx, val_idx = split_indices(len(rest), self.val_fraction, self.split_seed)
        self.splits = {
            "train": Transformed(full, rest[train_idx].tolist(), folder_transform(self.image_size, self.augment)),
            "val": Transformed(full, rest[val_idx].tolist(), evaluate),
            "test": test,
        }

    def train_dataloader(self) -> DataLoader:
        data = self.splits["train"]
        return self.loader(data, self.batch_size, sampler=SeededShuffle(len(data), self.seed))

    def val_dataloader(self) -> DataLoader:
        return self.loader(self.splits["val"], self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self.loader(self.splits["test"], self.eval_batch_size)

    def loader(self, data: Dataset, batch_size: int, sampler: SeededShuffle | None = None) -> DataLoader:
        """Per-sample loading in `sampler` order (in order when None), with workers kept across epochs."""
        workers = self.num_workers
        return DataLoader(data, batch_size, sampler=sampler, num_workers=workers, persistent_workers=workers > 0)
