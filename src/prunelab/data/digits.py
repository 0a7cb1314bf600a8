"""scikit-learn's bundled 8x8 digits: 1797 images, no files needed."""

from collections.abc import Sequence

import torch

from prunelab.data.module import DataModule
from prunelab.data.sampling import WholeBatches
from prunelab.data.settings import BatchSize, Shape, Workers, check_fraction
from prunelab.data.split import Split, split_indices
from prunelab.data.tensors import Loaded, TensorSource


class Digits(TensorSource):
    """8x8 grey digits, 10 classes; `test_fraction` of the images, chosen by `split_seed`, is the test split."""

    def __init__(self, test_fraction: float, split_seed: int):
        self.test_fraction, self.split_seed = test_fraction, split_seed

    def check(self, shape: Shape) -> None:
        check_fraction("dataset.test_fraction", self.test_fraction)
        shape.check_matches((1, 8, 8), 10)

    def load(self) -> Loaded:
        from sklearn.datasets import load_digits  # scikit-learn's import (~1 s) only when the digits are read

        digits = load_digits()
        x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1)
        y = torch.tensor(digits.target, dtype=torch.long)
        train_idx, test_idx = split_indices(len(y), self.test_fraction, self.split_seed)
        return x[train_idx], y[train_idx], x[test_idx], y[test_idx]


class DigitsDataModule(DataModule):
    """8x8 grey digits, 10 classes; `test_fraction` of the images is held out as the test split.

    The test split is fixed by `split_seed`; validation is carved from the remainder; `limit` caps the training
    split (see Split).
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
        test_fraction: float = 0.2,
        limit: int | None = None,
        device: str = "cpu",
    ):
        super().__init__(Shape.of(input_shape, num_classes), Split(val_fraction, split_seed, limit),
                         Digits(test_fraction, split_seed),
                         WholeBatches(batch_size, eval_batch_size, num_workers, seed, device))
