"""LightningDataModules; `conf/dataset/*.yaml` chooses one by `_target_`."""

from prunelab.data.augment import random_crop_flip
from prunelab.data.cached_folder import CachedFolderDataModule
from prunelab.data.digits import DigitsDataModule
from prunelab.data.folder import ImageFolderDataModule
from prunelab.data.module import DataModule, TensorDataModule
from prunelab.data.synthetic import SyntheticDataModule
from prunelab.data.vision import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    FashionMNISTDataModule,
    MNISTDataModule,
)

__all__ = [
    "CachedFolderDataModule",
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "DataModule",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "ImageFolderDataModule",
    "MNISTDataModule",
    "SyntheticDataModule",
    "TensorDataModule",
    "random_crop_flip",
]
