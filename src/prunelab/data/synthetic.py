"""Learnable random data of any shape and class count, for tests and quick experiments."""

import torch
from torch import Tensor

from prunelab.data.base import TensorDataModule


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


class SyntheticDataModule(TensorDataModule):
    """`num_samples` training (validation included) and `num_test` test samples, generated from `data_seed`.

    The defaults (signal 3, noise 1) give a linear model about 85% test accuracy for [1, 8, 8] and 10 classes.
    """

    def __init__(
        self,
        *args,
        num_samples: int = 1024,
        num_test: int = 256,
        data_seed: int = 0,
        signal: float = 3.0,
        noise: float = 1.0,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.num_samples, self.num_test, self.data_seed = num_samples, num_test, data_seed
        self.signal, self.noise = signal, noise

    def load(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        generator = torch.Generator().manual_seed(self.data_seed)
        n = self.num_samples + self.num_test
        x, y = prototype_samples(n, self.input_shape, self.num_classes, self.signal, self.noise, generator)
        return x[: self.num_samples], y[: self.num_samples], x[self.num_samples :], y[self.num_samples :]
