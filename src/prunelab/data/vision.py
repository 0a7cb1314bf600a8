"""MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100 from torchvision, held in memory as tensors."""

from pathlib import Path

import torch
from torch import Tensor
from torchvision import datasets

from prunelab.data.augment import CropFlipBatches
from prunelab.data.base import TensorDataModule
from prunelab.errors import ConfigError


def read_split(dataset_cls: type, root: Path, train: bool) -> tuple[Tensor, Tensor]:
    """uint8 N,C,H,W images and int64 labels of one official split, from files already under `root`."""
    dataset = dataset_cls(root=root, train=train, download=False)
    x = torch.as_tensor(dataset.data)
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)  # MNIST is N,H,W; CIFAR is N,H,W,C
    return x, torch.as_tensor(dataset.targets, dtype=torch.long)


def mnist_files(folder: str) -> tuple[str, ...]:
    """The unpacked files torchvision's MNIST-style datasets read, relative to the data folder."""
    kinds = ("images-idx3", "labels-idx1")
    return tuple(f"{folder}/raw/{split}-{kind}-ubyte" for split in ("train", "t10k") for kind in kinds)


class TorchvisionDataModule(TensorDataModule):
    """A torchvision data set with an official train/test split, read from `data_dir`.

    Subclasses name the torchvision class, the files it reads and the data's shape and class count.

    With `download` set, missing files are fetched by torchvision in `prepare_data`; present files are used as
    they are, so a read-only `data_dir` works offline.
    """

    dataset_cls: type
    files: tuple[str, ...]  # what torchvision reads, relative to data_dir
    data_shape: tuple[int, int, int]
    data_classes: int

    def __init__(self, *args, data_dir: str = "data", download: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.data_dir, self.download = Path(data_dir), download

    def missing_files(self) -> list[Path]:
        """The files of `files` not present under `data_dir`."""
        return [path for path in (self.data_dir / name for name in self.files) if not path.is_file()]

    def check(self) -> None:
        super().check()
        self.check_matches(self.data_shape, self.data_classes)
        if not self.download and (missing := self.missing_files()):
            raise ConfigError(
                "dataset.data_dir",
                f"{missing[0]} is missing and dataset.download is false",
                f"set dataset.download=true, or dataset.data_dir=<folder holding {Path(self.files[0]).parent}>",
            )

    def prepare_data(self) -> None:
        """Download the files when `download` is set and some are missing."""
        self.check()
        if not self.download or not self.missing_files():
            return
        try:
            self.dataset_cls(root=self.data_dir, train=True, download=True)
        except (RuntimeError, OSError) as error:
            reason = " ".join(str(error).split())  # torchvision's messages span lines
            raise ConfigError(
                "dataset.download",
                f"downloading {self.dataset_cls.__name__} into {self.data_dir} failed ({reason})",
                f"put the files under {self.data_dir / Path(self.files[0]).parent}, "
                "or set dataset.data_dir=<folder holding them>",
            ) from error

    def load(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        train, test = (read_split(self.dataset_cls, self.data_dir, split) for split in (True, False))
        return *train, *test


class MNISTDataModule(TorchvisionDataModule):
    """MNIST: 28x28 grey handwritten digits, 10 classes, 60000 train (validation included) and 10000 test."""

    dataset_cls, files = datasets.MNIST, mnist_files("MNIST")
    data_shape, data_classes = (1, 28, 28), 10


class FashionMNISTDataModule(TorchvisionDataModule):
    """Fashion-MNIST: 28x28 grey clothing images, 10 classes, 60000 train and 10000 test."""

    dataset_cls, files = datasets.FashionMNIST, mnist_files("FashionMNIST")
    data_shape, data_classes = (1, 28, 28), 10


class CIFARDataModule(CropFlipBatches, TorchvisionDataModule):
    """CIFAR base: with `augment`, training batches get a random 4-pixel-padded crop and horizontal flip."""


class CIFAR10DataModule(CIFARDataModule):
    """CIFAR-10: 32x32 colour images, 10 classes, 50000 train (validation included) and 10000 test."""

    dataset_cls = datasets.CIFAR10
    files = tuple(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)) + ("cifar-10-batches-py/test_batch",)
    data_shape, data_classes = (3, 32, 32), 10


class CIFAR100DataModule(CIFARDataModule):
    """CIFAR-100: 32x32 colour images, 100 classes, 50000 train (validation included) and 10000 test."""

    dataset_cls, files = datasets.CIFAR100, ("cifar-100-python/train", "cifar-100-python/test")
    data_shape, data_classes = (3, 32, 32), 100
