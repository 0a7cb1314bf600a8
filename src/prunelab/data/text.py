"""Plain text for language models: train/valid/test files, tokenized, cut into windows of `seq_len` tokens."""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from prunelab.data import tokens as T
from prunelab.data.sampling import WholeBatches
from prunelab.data.settings import BatchSize, Workers, check_at_least
from prunelab.data.tensors import TensorBatches
from prunelab.errors import ConfigError
from prunelab.paths import user_cache

SPLITS = ("train", "val", "test")


def covered(tokens: Tensor, seq_len: int, limit: int | None = None) -> Tensor:
    """The first tokens of `tokens` that its (at most `limit`) windows of `seq_len` inputs and their next tokens use."""
    n = (len(tokens) - 1) // seq_len
    n = n if limit is None else min(n, limit)
    return tokens[: n * seq_len + 1]


def windows(tokens: Tensor, seq_len: int, limit: int | None = None) -> tuple[Tensor, Tensor]:
    """(inputs, targets) of the non-overlapping windows of `seq_len` tokens that `tokens` holds, at most `limit`:
    window i's inputs are tokens [i * seq_len, (i + 1) * seq_len), its targets the same shifted by one, so every
    token but the first is a target once, predicted from the tokens before it in its window."""
    used = covered(tokens, seq_len, limit)
    return used[:-1].view(-1, seq_len), used[1:].view(-1, seq_len)


@dataclass(frozen=True)
class TextFiles:
    """The text file of each split (train, val, test) under `data_dir`."""

    data_dir: Path
    names: dict[str, str]

    def path(self, split: str) -> Path:
        return self.data_dir / self.names[split]

    def check(self) -> None:
        """Raise ConfigError for a missing or empty file, naming its setting."""
        for split in SPLITS:
            path, setting = self.path(split), f"dataset.{split}_file"
            if not path.is_file():
                raise ConfigError(setting, f"no text file at {path}",
                                  f"give the file's name in dataset.data_dir={self.data_dir}, or another data_dir")
            if path.stat().st_size == 0:
                raise ConfigError(setting, f"{path} is empty", "give a file that holds text")


class TextDataModule(pl.LightningDataModule):
    """Language-model windows of the text files `train_file`, `val_file` and `test_file` in `data_dir`.

    `tokenizer`: a folder holding a fast tokenizer's tokenizer.json (e.g. a model's own), or None for a byte-level
    BPE of `vocab_size` tokens trained on the train file. `vocab_size` is also the vocabulary of a model trained
    from scratch (the model sizes read `dataset.vocab_size`). The trained tokenizer and every file's token ids are
    cached in `cache_dir` (None: `prunelab.paths.user_cache("text")`) by hashes of the files and the tokenizer.
    Each split is cut into non-overlapping windows of `seq_len` input tokens whose targets are the next tokens (see
    `windows`), at most `limit` windows per split (its first). Training windows come in `batch_size` batches in
    an order fixed by `seed` and the epoch, evaluation windows in order in `eval_batch_size` batches.
    `calibration_samples` draws the calibration windows of activation-aware pruners.
    """

    def __init__(
        self,
        data_dir: str,
        train_file: str = "train.txt",
        val_file: str = "valid.txt",
        test_file: str = "test.txt",
        tokenizer: str | None = None,
        vocab_size: int = 4096,
        seq_len: int = 128,
        limit: int | None = None,
        cache_dir: str | None = None,
        batch_size: BatchSize = 16,
        eval_batch_size: BatchSize = 64,
        num_workers: Workers = 0,
        seed: int = 0,
        *,
        device: str = "cpu",
    ):
        super().__init__()
        names = dict(zip(SPLITS, (train_file, val_file, test_file)))
        self.files = TextFiles(Path(data_dir).expanduser(), names)
        self.tokenizer_folder = Path(tokenizer).expanduser() if tokenizer else None
        self.vocab_size, self.seq_len, self.limit = vocab_size, seq_len, limit
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else user_cache("text")
        self.batching = WholeBatches(batch_size, eval_batch_size, num_workers, seed, device)
        self._tokenizer = None
        self._tokens: dict[str, Tensor] | None = None
        self.splits: dict[str, TensorBatches] | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample: a window of `seq_len` token ids."""
        return (self.seq_len,)

    def check(self) -> None:
        """Raise ConfigError for settings or files that cannot work; loads (or trains) the tokenizer and reads the
        token ids (cached after the first time), so a split too short for one window is found here too."""
        check_at_least("dataset.seq_len", self.seq_len, 1)
        if self.limit is not None:
            check_at_least("dataset.limit", self.limit, 1)
        if self.tokenizer_folder is None and self.vocab_size < T.BYTES:
            raise ConfigError("dataset.vocab_size", f"a byte-level BPE has at least its {T.BYTES} bytes, got "
                              f"{self.vocab_size}", f"set dataset.vocab_size={T.BYTES} or more")
        self.batching.check()
        self.files.check()
        for split, ids in self._split_tokens().items():
            if len(ids) <= self.seq_len:
                raise ConfigError("dataset.seq_len", f"{self.files.path(split)} holds {len(ids)} tokens, too few for"
                                  f" one window of {self.seq_len} inputs and their next tokens",
                                  "give more text or a shorter dataset.seq_len")

    def tokenizer(self) -> T.Tokenizer:
        """The `tokenizers.Tokenizer` of the data: loaded from `tokenizer`, else trained (once, then cached)."""
        if self._tokenizer is None:
            folder = self.tokenizer_folder
            self._tokenizer = (T.folder_tokenizer(folder) if folder is not None
                               else T.trained_bpe(self.files.path("train"), self.vocab_size, self.cache_dir))
        return self._tokenizer

    def tokenizer_vocab_size(self) -> int:
        """The number of token ids the tokenizer gives (added tokens included): a model must embed that many."""
        return self.tokenizer().get_vocab_size(with_added_tokens=True)

    def _split_tokens(self) -> dict[str, Tensor]:
        if self._tokens is None:
            need = None if self.limit is None else self.limit * self.seq_len + 1
            self._tokens = {split: T.file_tokens(self.files.path(split), self.tokenizer(), self.cache_dir, need)
                            for split in SPLITS}
        return self._tokens

    def prepare_data(self) -> None:
        """Train the tokenizer and tokenize the files where they are not cached yet."""
        self.check()

    def setup(self, stage: str | None = None) -> None:
        """Check, then cut the splits into windows once; later calls return at once."""
        if self.splits is not None:
            return
        self.check()
        self.splits = {split: TensorBatches(*windows(ids, self.seq_len, self.limit))
                       for split, ids in self._split_tokens().items()}

    def calibration_samples(self, n: int, seed: int) -> Tensor:
        """`n` windows of `seq_len` tokens starting at seeded random positions of the training tokens (those the
        training windows cover), as Wanda's and SparseGPT's code draws them: (n, seq_len) token ids."""
        train = covered(self._split_tokens()["train"], self.seq_len, self.limit)
        starts = torch.randint(len(train) - self.seq_len + 1, (n,), generator=torch.Generator().manual_seed(seed))
        return train.unfold(0, self.seq_len, 1)[starts]

    def fingerprint(self) -> str:
        """A short sha256 of the three files and the tokenizer."""
        digest = hashlib.sha256()
        for split in SPLITS:
            digest.update(T.file_digest(self.files.path(split)).encode())
        digest.update(T.tokenizer_digest(self.tokenizer()).encode())
        return digest.hexdigest()[:16]

    def train_dataloader(self) -> DataLoader:
        return self.batching.train_loader(self.splits["train"])

    def val_dataloader(self) -> DataLoader:
        return self.batching.eval_loader(self.splits["val"])

    def test_dataloader(self) -> DataLoader:
        return self.batching.eval_loader(self.splits["test"])
