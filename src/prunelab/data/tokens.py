"""Text to token ids: a tokenizer from a local folder, or a byte-level BPE trained on the training text, and the
ids of a text file; both cached on disk by hashes of the files (and of the tokenizer) they come from.

Cache files are written atomically (`prunelab.atomic`), so a reader never sees half a file.
"""

import hashlib
from pathlib import Path

import torch
from torch import Tensor

from prunelab import atomic
from prunelab.errors import ConfigError

try:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
except ImportError:
    raise ConfigError("dataset", "the tokenizers package is not installed", "pip install 'prunelab[lm]'") from None

BYTES = 256  # a byte-level BPE's alphabet: every byte is a token, so any text can be encoded


def file_digest(path: Path) -> str:
    """A short sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def tokenizer_digest(tokenizer: Tokenizer) -> str:
    """A short sha256 of the tokenizer's serialised form (its vocabulary, merges and normalisation)."""
    return hashlib.sha256(tokenizer.to_str().encode()).hexdigest()[:16]


def folder_tokenizer(folder: Path) -> Tokenizer:
    """The fast tokenizer saved in `folder` (its tokenizer.json, as `save_pretrained` writes it)."""
    path = folder / "tokenizer.json"
    if not path.is_file():
        raise ConfigError("dataset.tokenizer", f"{folder} holds no tokenizer.json",
                          "give a folder a fast tokenizer was saved in (save_pretrained), or null to train a "
                          "byte-level BPE on the training text")
    return Tokenizer.from_file(str(path))


def trained_bpe(train: Path, vocab_size: int, cache_dir: Path) -> Tokenizer:
    """A byte-level BPE of `vocab_size` tokens (at most; fewer when the text has fewer merges) trained on the file
    `train`, cached as `<cache_dir>/bpe<vocab_size>-<file digest>.json`."""
    path = cache_dir / f"bpe{vocab_size}-{file_digest(train)}.json"
    if path.is_file():
        return Tokenizer.from_file(str(path))
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train([str(train)], trainer)
    _cache(atomic.write_text, path, tokenizer.to_str())
    return tokenizer


def file_tokens(path: Path, tokenizer: Tokenizer, cache_dir: Path, at_least: int | None = None) -> Tensor:
    """The int64 token ids of the text file `path`, cached (int32) as `<cache_dir>/tokens-<file>-<tokenizer>.pt`.

    With `at_least`, a file not cached yet is encoded only as far as needed to give that many ids (not cached),
    so a quick run does not tokenize a whole corpus; see `prefix_tokens`.
    """
    cached = cache_dir / f"tokens-{file_digest(path)}-{tokenizer_digest(tokenizer)}.pt"
    if cached.is_file():
        return torch.load(cached, weights_only=True).long()
    text = path.read_text(encoding="utf-8", errors="replace")
    if at_least is not None:
        return prefix_tokens(text, tokenizer, at_least)
    ids = torch.tensor(tokenizer.encode(text, add_special_tokens=False).ids, dtype=torch.int32)
    _cache(atomic.save_torch, cached, ids)
    return ids.long()


def prefix_tokens(text: str, tokenizer: Tokenizer, at_least: int) -> Tensor:
    """The first ids of `text`'s encoding, at least `at_least` of them (all of them when the text has fewer).

    The text is encoded up to where a word ends before whitespace. A byte-level BPE merges only within
    pre-tokens (words, number and punctuation runs, whitespace runs), none of which spans that cut, so the ids are
    the first ids of the whole text's encoding; so too for any tokenizer that never merges across whitespace
    (SentencePiece's). The prefix doubles until it is long enough.
    """
    length = 4 * at_least
    while True:
        end = word_end(text, length)
        ids = tokenizer.encode(text[:end], add_special_tokens=False).ids
        if len(ids) >= at_least or end == len(text):
            return torch.tensor(ids, dtype=torch.long)
        length *= 2


def word_end(text: str, start: int) -> int:
    """The first position from `start` where a non-space character is followed by whitespace; else len(text)."""
    for i in range(max(start, 1), len(text)):
        if text[i].isspace() and not text[i - 1].isspace():
            return i
    return len(text)


def _cache(write, path: Path, value) -> None:
    """`write(path, value)` (an `atomic` writer), a ConfigError naming `dataset.cache_dir` when it cannot."""
    try:
        write(path, value)
    except OSError as error:
        reason = " ".join(str(error).split())
        raise ConfigError("dataset.cache_dir", f"cannot write {path} ({reason})",
                          "set it to a writable folder") from None
