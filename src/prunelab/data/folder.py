"""Any folder with one subfolder of images per class, read image by image with per-sample transforms."""

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor
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


def folder_files(root: Path) -> list[tuple[str, int]]:
    """Every file under root/<class>/ (subfolders included) as (path relative to root, class index), in
    ImageFolder's order. Paths are strings: pathlib objects would make listing 60000 files ~10x slower."""
    files = []
    for label, class_name in enumerate(class_folders(root)):
        for folder, _, names in sorted(os.walk(root / class_name, followlinks=True)):
            prefix = Path(folder).relative_to(root).as_posix()
            files += [(f"{prefix}/{name}", label) for name in sorted(names)]
    return files


def files_digest(root: Path, files: Sequence[tuple[str, int]]) -> str:
    """A short sha256 of the files' relative paths and sizes: no file is read, so it is cheap.

    It changes when a file is added, removed, renamed or changes size (not when one is rewritten at the same size).
    """
    digest = hashlib.sha256()
    for name, _ in files:
        digest.update(f"{name}\0{os.stat(os.path.join(root, name)).st_size}\n".encode())
    return digest.hexdigest()[:16]


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


class FolderDataModule(SplitDataModule):
    """Images under `root/<class>/`; the test split is the folder `test_root` (same class subfolders) or,
    when it is null, `test_fraction` of `root` held out by a permutation seeded with `split_seed`;
    validation is carved from the rest.
    """

    def __init__(self, *args, root: str, test_root: str | None = None, test_fraction: float = 0.2, **kwargs):
        super().__init__(*args, **kwargs)
        self.root, self.test_root = Path(root), Path(test_root) if test_root else None
        self.test_fraction = test_fraction

    def folders(self) -> dict[str, Path]:
        """The folders read, by setting name: dataset.root, and dataset.test_root when it is given."""
        named = {"dataset.root": self.root, "dataset.test_root": self.test_root}
        return {setting: folder for setting, folder in named.items() if folder is not None}

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
        if self.test_root is None:
            check_fraction("dataset.test_fraction", self.test_fraction)
        elif class_folders(self.test_root) != classes:
            raise ConfigError(
                "dataset.test_root",
                f"the class subfolders of {self.test_root} differ from those of {self.root}",
                "point it at a folder with the same class subfolders, or set it to null to carve a test split",
            )

    def fingerprint(self) -> str:
        """A short sha256 of the file lists and sizes of root and test_root (no image is read)."""
        digests = (files_digest(folder, folder_files(folder)) for folder in self.folders().values())
        return hashlib.sha256(" ".join(digests).encode()).hexdigest()[:16]


class ImageFolderDataModule(FolderDataModule):
    """Images resized and centre-cropped to `image_size`, normalised with ImageNet stats, read image by image.

    With `augment`, training images get RandomResizedCrop and a horizontal flip instead.
    """

    def __init__(self, *args, image_size: int = 64, augment: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.image_size, self.augment = image_size, augment
        self.splits: dict[str, Transformed] | None = None

    def check(self) -> None:
        super().check()
        self.check_matches((3, self.image_size, self.image_size), len(class_folders(self.root)))

    def setup(self, stage: str | None = None) -> None:
        """Index the folders and make the splits once; later calls return at once."""
        if self.splits is not None:
            return
        self.check()
        folders = {"root": ImageFolder(self.root), "test_root": self.test_root and ImageFolder(self.test_root)}
        n_test = len(folders["test_root"]) if self.test_root else None
        splits = folder_splits(len(folders["root"]), n_test, self.val_fraction, self.test_fraction, self.split_seed)
        evaluate = folder_transform(self.image_size, augment=False)
        train = folder_transform(self.image_size, self.augment)
        self.splits = {
            split: Transformed(folders[folder], idx.tolist(), train if split == "train" else evaluate)
            for split, (folder, idx) in splits.items()
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
