"""How splits are served: the seeded training order, whole-batch loaders, and the batch settings with their checks."""

from dataclasses import dataclass

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler, SequentialSampler

from prunelab import hints
from prunelab.data.settings import BatchSize, Workers
from prunelab.data.tensors import TensorBatches
from prunelab.errors import ConfigError
from prunelab.seeds import epoch_seed


class SeededShuffle(Sampler[int]):
    """Shuffles range(n) in an order that is a pure function of (seed, epoch), so runs can resume."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Select the order for `epoch`; Lightning calls this before every epoch."""
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        return iter(torch.randperm(self.n, generator=generator).tolist())

    def __len__(self) -> int:
        return self.n


class EpochBatchSampler(BatchSampler):
    """A BatchSampler that forwards `set_epoch` to its inner sampler.

    With `batch_size=None` the DataLoader's `sampler` is this object, which is where Lightning looks.
    """

    def set_epoch(self, epoch: int) -> None:
        """Forward the epoch to the wrapped sampler when it has one."""
        if callable(set_epoch := getattr(self.sampler, "set_epoch", None)):
            set_epoch(epoch)


def batch_loader(data: TensorBatches, sampler: Sampler, batch_size: int, num_workers: int) -> DataLoader:
    """A DataLoader serving whole batches of `data` in the order of `sampler`."""
    batches = EpochBatchSampler(sampler, batch_size, drop_last=False)
    return DataLoader(data, batch_size=None, sampler=batches, num_workers=num_workers)


def check_sizes(batch_size: int, eval_batch_size: int, num_workers: int) -> None:
    """Raise ConfigError for a batch size below 1 or a negative worker count."""
    hints.check("dataset.batch_size", batch_size, BatchSize)
    hints.check("dataset.eval_batch_size", eval_batch_size, BatchSize)
    hints.check("dataset.num_workers", num_workers, Workers)


@dataclass(frozen=True)
class WholeBatches:
    """Splits held in memory (TensorBatches) on `device`, served as whole batches: training batches in the
    order SeededShuffle(seed) gives each epoch, evaluation batches in order.

    `device`: where the splits are held (e.g. `cuda` for a data set that fits on the GPU: batches are cut
    and augmented there, with no host-to-device copy per step); the host's memory by default.
    """

    batch_size: BatchSize
    eval_batch_size: BatchSize
    num_workers: Workers
    seed: int
    device: str = "cpu"

    def check(self) -> None:
        """Raise ConfigError for settings that cannot work, before anything is loaded."""
        check_sizes(self.batch_size, self.eval_batch_size, self.num_workers)
        try:
            torch.device(self.device)
        except RuntimeError:
            raise ConfigError("dataset.device", f"{self.device!r} is not a torch device",
                              "set dataset.device=cpu or cuda") from None
        if torch.device(self.device).type != "cpu" and self.num_workers:
            raise ConfigError("dataset.num_workers", f"must be 0 with the data on {self.device}, got {self.num_workers}",
                              "set dataset.num_workers=0 (batches are cut on the device, no workers needed)")

    def train_loader(self, data: TensorBatches) -> DataLoader:
        """Batches of `data` in the seeded order of the epoch Lightning sets."""
        data = data.to(torch.device(self.device))
        return batch_loader(data, SeededShuffle(len(data), self.seed), self.batch_size, self.num_workers)

    def eval_loader(self, data: TensorBatches) -> DataLoader:
        """Batches of `data` in order, unshuffled."""
        data = data.to(torch.device(self.device))
        return batch_loader(data, SequentialSampler(data), self.eval_batch_size, self.num_workers)


@dataclass(frozen=True)
class SampleBatches:
    """Samples loaded one by one (with per-sample transforms) and collated into batches, with workers kept
    across epochs: training batches in the order SeededShuffle(seed) gives each epoch, evaluation batches in order.
    """

    batch_size: BatchSize
    eval_batch_size: BatchSize
    num_workers: Workers
    seed: int

    def check(self) -> None:
        """Raise ConfigError for settings that cannot work, before anything is loaded."""
        check_sizes(self.batch_size, self.eval_batch_size, self.num_workers)

    def train_loader(self, data: Dataset) -> DataLoader:
        """Batches of `data` in the seeded order of the epoch Lightning sets."""
        return self.loader(data, self.batch_size, sampler=SeededShuffle(len(data), self.seed))

    def eval_loader(self, data: Dataset) -> DataLoader:
        """Batches of `data` in order, unshuffled."""
        return self.loader(data, self.eval_batch_size)

    def loader(self, data: Dataset, batch_size: int, sampler: SeededShuffle | None = None) -> DataLoader:
        """Per-sample loading in `sampler` order (in order when None), with workers kept across epochs."""
        workers = self.num_workers
        return DataLoader(data, batch_size, sampler=sampler, num_workers=workers, persistent_workers=workers > 0)
