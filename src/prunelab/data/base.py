"""What every datamodule shares: split settings, seeded splits, and whole-batch tensor loaders."""

import hashlib
from collections.abc import Sequence

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    Sampler,
    SequentialSampler,
)

from prunelab.errors import ConfigError
from prunelab.seeds import epoch_seed


def split_indices(n: int, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Split range(n) into (kept, held out) with a fixed permutation; `fraction` of n is held out."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    held = round(n * fraction)
    return perm[held:], perm[:held]


def standardise(train: Tensor, *others: Tensor) -> list[Tensor]:
    """Scale N,C,H,W tensors to zero mean, unit std per channel, using statistics of `train` only."""
    mean = train.mean(dim=(0, 2, 3), keepdim=True)
    std = train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-8)
    return [(x - mean) / std for x in (train, *others)]


def tensor_digest(*tensors: Tensor) -> str:
    """A short sha256 of the tensors' dtypes, shapes and values."""
    digest = hashlib.sha256()
    for t in tensors:
        digest.update(f"{t.dtype} {tuple(t.shape)}".encode())
        digest.update(t.detach().cpu().contiguous().numpy())
    return digest.hexdigest()[:16]


def check_fraction(setting: str, value: float) -> None:
    """Raise ConfigError unless 0 < value < 1."""
    if not 0 < value < 1:
        raise ConfigError(setting, f"{value} is not strictly between 0 and 1", f"set {setting}=0.1 or similar")


def check_at_least(setting: str, value: int, low: int) -> None:
    """Raise ConfigError unless value >= low."""
    if value < low:
        raise ConfigError(setting, f"must be >= {low}, got {value}", f"set {setting}={max(low, 1)} or more")


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


class TensorBatches(Dataset):
    """In-memory (x, y) indexed by a list of indices, so one fetch returns a whole batch."""

    def __init__(self, x: Tensor, y: Tensor):
        self.x, self.y = x, y

    def to(self, device: torch.device) -> "TensorBatches":
        """Hold the data on `device` (batches are then cut there, with no copy from the host)."""
        self.x, self.y = self.x.to(device), self.y.to(device)
        return self

    def __getitem__(self, idx: list[int]) -> tuple[Tensor, Tensor]:
        # index_select on a 2-D view is ~50x faster than advanced indexing of an N,C,H,W tensor.
        rows = torch.as_tensor(idx, device=self.x.device)
        x = self.x.view(len(self.x), -1).index_select(0, rows).view(len(rows), *self.x.shape[1:])
        return x, self.y.index_select(0, rows)

    def __len__(self) -> int:
        return len(self.y)


class NormalisedBatches(TensorBatches):
    """uint8 N,C,H,W images served as float32 batches, scaled to [0, 1] and normalised per channel."""

    def __init__(self, x: Tensor, y: Tensor, mean: Sequence[float], std: Sequence[float]):
        super().__init__(x, y)
        mean, std = (torch.tensor(v, dtype=torch.float32).view(-1, 1, 1) for v in (mean, std))
        self.scale, self.shift = 1 / (255 * std), mean / std

    def to(self, device: torch.device) -> "NormalisedBatches":
        super().to(device)
        self.scale, self.shift = self.scale.to(device), self.shift.to(device)
        return self

    def __getitem__(self, idx: list[int]) -> tuple[Tensor, Tensor]:
        x, y = super().__getitem__(idx)
        # (x / 255 - mean) / std as one in-place multiply and subtract: ~10x faster than four out-of-place ops.
        return x.float().mul_(self.scale).sub_(self.shift), y


def batch_loader(data: TensorBatches, sampler: Sampler, batch_size: int, num_workers: int) -> DataLoader:
    """A DataLoader serving whole batches of `data` in the order of `sampler`."""
    batches = EpochBatchSampler(sampler, batch_size, drop_last=False)
    return DataLoader(data, batch_size=None, sampler=batches, num_workers=num_workers)


class SplitDataModule(pl.LightningDataModule):
    """Settings shared by every dataset: shape and class count, batch sizes, the validation split, seeds.

    `input_shape` and `num_classes` are config keys models read; datasets with fixed data check them.
    The validation split is carved from the training data by a permutation seeded with `split_seed`;
    `seed` (the run seed) orders the training batches.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        batch_size: int = 128,
        eval_batch_size: int = 1000,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        num_workers: int = 0,
        seed: int = 0,
    ):
        super().__init__()
        self.input_shape, self.num_classes = tuple(int(s) for s in input_shape), int(num_classes)
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_fraction, self.split_seed = val_fraction, split_seed
        self.num_workers, self.seed = num_workers, seed

    def check(self) -> None:
        """Raise ConfigError for settings that cannot work, before anything is loaded or trained."""
        check_fraction("dataset.val_fraction", self.val_fraction)
        check_at_least("dataset.batch_size", self.batch_size, 1)
        check_at_least("dataset.eval_batch_size", self.eval_batch_size, 1)
        check_at_least("dataset.num_workers", self.num_workers, 0)

    def check_matches(self, input_shape: Sequence[int], num_classes: int) -> None:
        """Raise ConfigError when the configured shape or class count differs from the data's."""
        if self.input_shape != tuple(input_shape):
            raise ConfigError(
                "dataset.input_shape",
                f"{list(self.input_shape)} does not match the data's {list(input_shape)}",
                f"set dataset.input_shape={list(input_shape)}",
            )
        if self.num_classes != num_classes:
            raise ConfigError(
                "dataset.num_classes",
                f"{self.num_classes} does not match the data's {num_classes}",
                f"set dataset.num_classes={num_classes}",
            )

    def fingerprint(self) -> str:
        """A short hash of the data itself (not of the settings), for the protocol record; changes with the data."""
        raise NotImplementedError


class BatchDataModule(SplitDataModule):
    """Splits held in memory as TensorBatches in `splits`, served as whole batches; subclasses fill `splits` in setup.

    `device`: where the splits are held (e.g. `cuda` for a data set that fits on the GPU: batches are cut
    and augmented there, with no host-to-device copy per step); the host's memory by default.
    """

    def __init__(self, *args, device: str = "cpu", **kwargs):
        super().__init__(*args, **kwargs)
        self.device = device
        self.splits: dict[str, TensorBatches] | None = None
        self._held: set[str] = set()

    def check(self) -> None:
        super().check()
        try:
            torch.device(self.device)
        except RuntimeError:
            raise ConfigError("dataset.device", f"{self.device!r} is not a torch device",
                              "set dataset.device=cpu or cuda") from None
        if torch.device(self.device).type != "cpu" and self.num_workers:
            raise ConfigError("dataset.num_workers", f"must be 0 with the data on {self.device}, got {self.num_workers}",
                              "set dataset.num_workers=0 (batches are cut on the device, no workers needed)")

    def split(self, name: str) -> TensorBatches:
        """The split `name`, held on `device` from its first use on."""
        if name not in self._held:
            self.splits[name].to(torch.device(self.device))
            self._held.add(name)
        return self.splits[name]

    def train_dataloader(self) -> DataLoader:
        data = self.split("train")
        return batch_loader(data, SeededShuffle(len(data), self.seed), self.batch_size, self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return self.eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self.eval_loader("test")

    def eval_loader(self, split: str) -> DataLoader:
        """Batches of `split` in order, unshuffled."""
        data = self.split(split)
        return batch_loader(data, SequentialSampler(data), self.eval_batch_size, self.num_workers)


class TensorDataModule(BatchDataModule):
    """A data set held in memory as standardised float32 N,C,H,W tensors, served as whole batches.

    Subclasses implement `load() -> (train_x, train_y, test_x, test_y)`.
    """

    def load(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(train_x, train_y, test_x, test_y): N,C,H,W images and integer labels, train including validation."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        """Load, split and standardise once; later calls return at once."""
        if self.splits is not None:
            return
        self.check()
        train_x, train_y, test_x, test_y = self.load()
        self.data_fingerprint = tensor_digest(train_x, train_y, test_x, test_y)
        train_idx, val_idx = split_indices(len(train_y), self.val_fraction, self.split_seed)
        xs = standardise(train_x[train_idx].float(), train_x[val_idx].float(), test_x.float())
        ys = (train_y[train_idx], train_y[val_idx], test_y)
        self.splits = {name: TensorBatches(x, y.long()) for name, x, y in zip(("train", "val", "test"), xs, ys)}

    def fingerprint(self) -> str:
        """A short sha256 of the loaded tensors (loading them first if needed)."""
        self.setup()
        return self.data_fingerprint
