"""MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100 from torchvision, held in memory as tensors."""

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor
from torchvision import datasets

from prunelab.data.augment import BatchAugmentation
from prunelab.data.module import DataModule
from prunelab.data.sampling import WholeBatches
from prunelab.data.settings import BatchSize, Cutout, Shape, Workers
from prunelab.data.split import Split
from prunelab.data.tensors import Loaded, TensorSource
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


class TorchvisionSet(NamedTuple):
    """A torchvision data set with an official train/test split: its class, the files it reads (relative to the
    data folder), and the shape and class count of its data."""

    dataset_cls: type
    files: tuple[str, ...]
    data_shape: tuple[int, int, int]
    data_classes: int


MNIST = TorchvisionSet(datasets.MNIST, mnist_files("MNIST"), (1, 28, 28), 10)
FASHION_MNIST = TorchvisionSet(datasets.FashionMNIST, mnist_files("FashionMNIST"), (1, 28, 28), 10)
CIFAR10 = TorchvisionSet(
    datasets.CIFAR10,
    tuple(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)) + ("cifar-10-batches-py/test_batch",),
    (3, 32, 32),
    10,
)
CIFAR100 = TorchvisionSet(datasets.CIFAR100, ("cifar-100-python/train", "cifar-100-python/test"), (3, 32, 32), 100)


class TorchvisionFiles(TensorSource):
    """The files of `dataset` read from `data_dir`.

    With `download` set, missing files are fetched by torchvision in `prepare`; present files are used as
    they are, so a read-only `data_dir` works offline.
    """

    def __init__(self, dataset: TorchvisionSet, data_dir: str, download: bool):
        self.dataset, self.data_dir, self.download = dataset, Path(data_dir), download

    def missing_files(self) -> list[Path]:
        """The files of `dataset` not present under `data_dir`."""
        return [path for path in (self.data_dir / name for name in self.dataset.files) if not path.is_file()]

    def check(self, shape: Shape) -> None:
        shape.check_matches(self.dataset.data_shape, self.dataset.data_classes)
        if not self.download and (missing := self.missing_files()):
            raise ConfigError(
                "dataset.data_dir",
                f"{missing[0]} is missing and dataset.download is false",
                f"set dataset.download=true, or dataset.data_dir=<folder holding {Path(self.dataset.files[0]).parent}>",
            )

    def prepare(self) -> None:
        """Download the files when `download` is set and some are missing."""
        if not self.download or not self.missing_files():
            return
        try:
            self.dataset.dataset_cls(root=self.data_dir, train=True, download=True)
        except (RuntimeError, OSError) as error:
            reason = " ".join(str(error).split())  # torchvision's messages span lines
            raise ConfigError(
                "dataset.download",
                f"downloading {self.dataset.dataset_cls.__name__} into {self.data_dir} failed ({reason})",
                f"put the files under {self.data_dir / Path(self.dataset.files[0]).parent}, "
                "or set dataset.data_dir=<folder holding them>",
            ) from error

    def load(self) -> Loaded:
        train, test = (read_split(self.dataset.dataset_cls, self.data_dir, split) for split in (True, False))
        return *train, *test


class TorchvisionDataModule(DataModule):
    """A torchvision data set (the class attribute `dataset`) read from `data_dir`, held in memory, standardised;
    `limit` caps the training split (see Split)."""

    dataset: TorchvisionSet

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
        data_dir: str = "data",
        download: bool = False,
        limit: int | None = None,
        device: str = "cpu",
    ):
        super().__init__(Shape.of(input_shape, num_classes), Split(val_fraction, split_seed, limit),
                         TorchvisionFiles(self.dataset, data_dir, download),
                         WholeBatches(batch_size, eval_batch_size, num_workers, seed, device))


class CIFARDataModule(DataModule):
    """A CIFAR data set (the class attribute `dataset`) read from `data_dir`, held in memory, standardised; with
    `augment`, training batches get a random 4-pixel-padded crop and horizontal flip (and with `cutout` > 0 a
    square of that side zeroed in each, DeVries & Taylor 2017); `limit` caps the training
    split (see Split)."""

    dataset: TorchvisionSet

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
        data_dir: str = "data",
        download: bool = False,
        augment: bool = False,
        cutout: Cutout = 0,
        limit: int | None = None,
        device: str = "cpu",
    ):
        super().__init__(Shape.of(input_shape, num_classes), Split(val_fraction, split_seed, limit),
                         TorchvisionFiles(self.dataset, data_dir, download),
                         WholeBatches(batch_size, eval_batch_size, num_workers, seed, device),
                         BatchAugmentation(seed, augment, cutout))


class MNISTDataModule(TorchvisionDataModule):
    """MNIST: 28x28 grey handwritten digits, 10 classes, 60000 train (validation included) and 10000 test."""

    dataset = MNIST


class FashionMNISTDataModule(TorchvisionDataModule):
    """Fashion-MNIST: 28x28 grey clothing images, 10 classes, 60000 train and 10000 test."""

    dataset = FASHION_MNIST


class CIFAR10DataModule(CIFARDataModule):
    """CIFAR-10: 32x32 colour images, 10 classes, 50000 train (validation included) and 10000 test."""

    dataset = CIFAR10


class CIFAR100DataModule(CIFARDataModule):
    """CIFAR-100: 32x32 colour images, 100 classes, 50000 train (validation included) and 10000 test."""

    dataset = CIFAR100
