"""The datamodule as parts: a source of splits, a validation split, batching and augmentation; the plugin base."""

from collections.abc import Sequence
from typing import Protocol

import pytorch_lightning as pl
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from prunelab.data.augment import BatchAugmentation
from prunelab.data.sampling import WholeBatches
from prunelab.data.settings import BatchSize, Shape, Workers
from prunelab.data.split import Split
from prunelab.data.tensors import Loaded, LoadedBy


class Source(Protocol):
    """Where a datamodule's splits come from: a data set in memory, files, a folder decoded into a cache."""

    def check(self, shape: Shape) -> None:
        """Raise ConfigError for settings that cannot work (the configured shape included), before any loading."""

    def prepare(self) -> None:
        """Fetch or cache what `splits` reads (downloads, decoded folders), once per machine."""

    def splits(self, split: Split) -> dict[str, Dataset]:
        """The train, val and test splits, validation carved from the training data by `split`."""

    def fingerprint(self) -> str:
        """A short hash of the data itself (not of the settings), for the protocol record; changes with the data."""


class Batching(Protocol):
    """How splits are served: the loaders and the settings they take."""

    def check(self) -> None:
        """Raise ConfigError for settings that cannot work."""

    def train_loader(self, data: Dataset) -> DataLoader:
        """Training batches of `data`, in an order fixed by the run seed and the epoch."""

    def eval_loader(self, data: Dataset) -> DataLoader:
        """Batches of `data` in order."""


class DataModule(pl.LightningDataModule):
    """A LightningDataModule made of parts, each a small object with its own settings and checks.

    `shape`: the configured input shape and class count, which models read (`input_shape`, `num_classes`);
    `split`: the validation split; `source`: where the splits come from; `batching`: how they are served;
    `augmentation`: applied to training batches after their transfer to the device (None: none). Batches
    fetched outside the Trainer's training loop (evaluation, pruning scores) are left as they are.
    """

    def __init__(self, shape: Shape, split: Split, source: Source, batching: Batching,
                 augmentation: BatchAugmentation | None = None):
        super().__init__()
        self.shape, self.split, self.source, self.batching = shape, split, source, batching
        self.augmentation = augmentation
        self.splits: dict[str, Dataset] | None = None
        self._prepared = False

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.shape.input_shape

    @property
    def num_classes(self) -> int:
        return self.shape.num_classes

    def check(self) -> None:
        """Raise ConfigError for settings that cannot work, before anything is loaded or trained."""
        self.split.check()
        self.batching.check()
        if self.augmentation is not None:
            self.augmentation.check()
        self.source.check(self.shape)

    def prepare_data(self) -> None:
        """Fetch or cache what the source reads, once per machine (and once per datamodule: a run fetches before
        its logger starts, then Lightning asks again)."""
        if self._prepared:
            return
        self.check()
        self.source.prepare()
        self._prepared = True

    def setup(self, stage: str | None = None) -> None:
        """Check, then make the splits once; later calls return at once."""
        if self.splits is not None:
            return
        self.check()
        self.splits = self.source.splits(self.split)

    def fingerprint(self) -> str:
        """A short hash of the data itself (not of the settings), for the protocol record; changes with the data."""
        return self.source.fingerprint()

    def train_dataloader(self) -> DataLoader:
        return self.batching.train_loader(self.splits["train"])

    def val_dataloader(self) -> DataLoader:
        return self.batching.eval_loader(self.splits["val"])

    def test_dataloader(self) -> DataLoader:
        return self.batching.eval_loader(self.splits["test"])

    def on_after_batch_transfer(self, batch: tuple[Tensor, Tensor], dataloader_idx: int) -> tuple[Tensor, Tensor]:
        if self.augmentation is None or self.trainer is None or not self.trainer.training:
            return batch
        return self.augmentation(batch)

    def state_dict(self) -> dict:
        """The augmentation's state, which Lightning saves in checkpoints."""
        return self.augmentation.state_dict() if self.augmentation is not None else {}

    def load_state_dict(self, state_dict: dict) -> None:
        if self.augmentation is not None:
            self.augmentation.load_state_dict(state_dict)


class TensorDataModule(DataModule):
    """A data set held in memory as standardised float32 N,C,H,W tensors, served as whole batches.

    Subclasses implement `load() -> (train_x, train_y, test_x, test_y)`. The validation split is carved from
    the training data by a permutation seeded with `split_seed`; `limit` keeps at most that many of the rest
    for training (see Split); `seed` (the run seed) orders the training batches; `device` is where the splits
    are held (see WholeBatches).
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
        limit: int | None = None,
        device: str = "cpu",
    ):
        super().__init__(Shape.of(input_shape, num_classes), Split(val_fraction, split_seed, limit),
                         LoadedBy(self.load), WholeBatches(batch_size, eval_batch_size, num_workers, seed, device))

    def load(self) -> Loaded:
        """(train_x, train_y, test_x, test_y): N,C,H,W images and integer labels, train including validation."""
        raise NotImplementedError
