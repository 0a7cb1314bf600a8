"""scikit-learn's bundled 8x8 digits: 1797 images, no files needed."""

import torch
from sklearn.datasets import load_digits
from torch import Tensor

from prunelab.data.base import TensorDataModule, check_fraction, split_indices


class DigitsDataModule(TensorDataModule):
    """8x8 grey digits, 10 classes; `test_fraction` of the images is held out as the test split.

    The test split is fixed by `split_seed`; validation is carved from the remainder.
    """

    def __init__(self, *args, test_fraction: float = 0.2, **kwargs):
        super().__init__(*args, **kwargs)
        self.test_fraction = test_fraction

    def check(self) -> None:
        super().check()
        check_fraction("dataset.test_fraction", self.test_fraction)
        self.check_matches((1, 8, 8), 10)

    def load(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        digits = load_digits()
        x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1)
        y = torch.tensor(digits.target, dtype=torch.long)
        train_idx, test_idx = split_indices(len(y), self.test_fraction, self.split_seed)
        return x[train_idx], y[train_idx], x[test_idx], y[test_idx]
