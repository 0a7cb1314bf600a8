"""Learnable random data of any shape and class count, for tests and quick experiments."""

from collections.abc import Sequence

import torch
from torch import Tensor

from prunelab.data.module import DataModule
from prunelab.data.sampling import WholeBatches
from prunelab.data.settings import BatchSize, Shape, Workers
from prunelab.data.split import Split
from prunelab.data.tensors import Loaded, TensorSource


def prototype_samples(
    n: int, input_shape: tuple[int, ...], num_classes: int, signal: float, noise: float, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """n samples x = prototype[y] + noise * N(0, 1), one random prototype of L2 norm `signal` per class.

    Fixing the prototypes' norm rather than their per-pixel scale keeps the difficulty similar for any shape.
    """
    prototypes = torch.randn(num_classes, *input_shape, generator=generator)
    prototypes = signal * prototypes / prototypes.flatten(1).norm(dim=1).view(-1, *[1] * len(input_shape))
    y = torch.randint(num_classes, (n,), generator=generator)
    return prototypes[y] + noise * torch.randn(n, *input_shape, generator=generator), y


class Prototypes(TensorSource):
    """`num_samples` training (validation included) and `num_test` test samples of `shape`, drawn from `data_seed`."""

    def __init__(self, shape: Shape, num_samples: int, num_test: int, data_seed: int, signal: float, noise: float):
        self.shape, self.num_samples, self.num_test, self.data_seed = shape, num_samples, num_test, data_seed
        self.signal, self.noise = signal, noise

    def load(self) -> Loaded:
        generator = torch.Generator().manual_seed(self.data_seed)
        n = self.num_samples + self.num_test
        x, y = prototype_samples(n, self.shape.input_shape, self.shape.num_classes, self.signal, self.noise, generator)
        return x[: self.num_samples], y[: self.num_samples], x[self.num_samples :], y[self.num_samples :]


class SyntheticDataModule(DataModule):
    """`num_samples` training (validation included) and `num_test` test samples, generated from `data_seed`.

    The defaults (signal 3, noise 1) give a linear model about 85% test accuracy for [1, 8, 8] and 10 classes.
    `limit` caps the training split (see Split).
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
        num_samples: int = 1024,
        num_test: int = 256,
        data_seed: int = 0,
        signal: float = 3.0,
        noise: float = 1.0,
        limit: int | None = None,
        device: str = "cpu",
    ):
        shape = Shape.of(input_shape, num_classes)
        super().__init__(shape, Split(val_fraction, split_seed, limit),
                         Prototypes(shape, num_samples, num_test, data_seed, signal, noise),
                         WholeBatches(batch_size, eval_batch_size, num_workers, seed, device))
