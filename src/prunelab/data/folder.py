"""Folders with one subfolder of images per class (listing, splits, fingerprint), read image by image."""

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor
from torch.utils.data import Dataset
from torchvision import transforms as T
from torchvision.datasets import ImageFolder

from prunelab.data.module import DataModule
from prunelab.data.sampling import SampleBatches
from prunelab.data.settings import BatchSize, Shape, Workers, check_fraction
from prunelab.data.split import Split, folder_splits
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


@dataclass(frozen=True)
class Folders:
    """Images under `root/<class>/`; the test split is the folder `test_root` (same class subfolders) or,
    when it is None, `test_fraction` of `root` held out by a permutation seeded with `split_seed`;
    validation is carved from the rest.
    """

    root: Path
    test_root: Path | None
    test_fraction: float

    @classmethod
    def of(cls, root: str, test_root: str | None, test_fraction: float) -> "Folders":
        """The folders as configured (strings; a null or empty test_root is none)."""
        return cls(Path(root), Path(test_root) if test_root else None, test_fraction)

    def named(self) -> dict[str, Path]:
        """The folders read, by setting name: dataset.root, and dataset.test_root when it is given."""
        named = {"dataset.root": self.root, "dataset.test_root": self.test_root}
        return {setting: folder for setting, folder in named.items() if folder is not None}

    def check(self) -> None:
        """Raise ConfigError unless root has 2 or more class subfolders and test_root the same ones."""
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

    def splits(self, n_root: int, n_test_root: int | None, split: Split) -> dict[str, tuple[str, Tensor]]:
        """(folder, indices) of each split, as `folder_splits` gives them."""
        return folder_splits(n_root, n_test_root, split.val_fraction, self.test_fraction, split.split_seed)

    def fingerprint(self) -> str:
        """A short sha256 of the file lists and sizes of root and test_root (no image is read)."""
        digests = (files_digest(folder, folder_files(folder)) for folder in self.named().values())
        return hashlib.sha256(" ".join(digests).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ImageFiles:
    """The images of `folders` read one by one, resized and centre-cropped to `image_size`, normalised with
    ImageNet statistics; with `augment`, training images get RandomResizedCrop and a horizontal flip instead.
    """

    folders: Folders
    image_size: int
    augment: bool

    def check(self, shape: Shape) -> None:
        self.folders.check()
        shape.check_matches((3, self.image_size, self.image_size), len(class_folders(self.folders.root)))

    def prepare(self) -> None:
        """Nothing: images are read as they are used."""

    def splits(self, split: Split) -> dict[str, Transformed]:
        """Index the folders and make the splits."""
        root, test_root = self.folders.root, self.folders.test_root
        folders = {"root": ImageFolder(root), "test_root": test_root and ImageFolder(test_root)}
        n_test = len(folders["test_root"]) if test_root else None
        splits = self.folders.splits(len(folders["root"]), n_test, split)
        evaluate = folder_transform(self.image_size, augment=False)
        train = folder_transform(self.image_size, self.augment)
        return {
            name: Transformed(folders[folder], idx.tolist(), train if name == "train" else evaluate)
            for name, (folder, idx) in splits.items()
        }

    def fingerprint(self) -> str:
        return self.folders.fingerprint()


class ImageFolderDataModule(DataModule):
    """Images resized and centre-cropped to `image_size`, normalised with ImageNet stats, read image by image.

    The test split is the folder `test_root` or, when it is null, `test_fraction` of `root`; with `augment`,
    training images get RandomResizedCrop and a horizontal flip instead.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        batch_size: BatchSize = 128,
        eval_batch_size: BatchSize = 1000,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        num_workers: Workers = 0,
        seed: int = 0,
        *,
        root: str,
        test_root: str | None = None,
        test_fraction: float = 0.2,
        image_size: int = 64,
        augment: bool = False,
    ):
        super().__init__(Shape.of(input_shape, num_classes), Split(val_fraction, split_seed),
                         ImageFiles(Folders.of(root, test_root, test_fraction), image_size, augment),
                         SampleBatches(batch_size, eval_batch_size, num_workers, seed))
