"""dataset=text: text files tokenized (a trained byte-level BPE or a tokenizer folder), cached by hashes, cut into
windows whose targets are the next tokens; `limit`; calibration windows; the fingerprint; the bad inputs."""

import pytest
import torch

from prunelab.config import build
from prunelab.data import tokens as T
from prunelab.data.text import TextDataModule, windows
from prunelab.errors import ConfigError
from tests.helpers import LM_DATA, SHARED_DATA, compose_config, text_corpus, text_options


@pytest.fixture
def corpus(tmp_path):
    return text_corpus(tmp_path / "corpus")


def datamodule(corpus, cache, *overrides) -> TextDataModule:
    return build(compose_config(*LM_DATA, *text_options(corpus, cache), *overrides).dataset)


def test_windows_are_non_overlapping_and_their_targets_are_the_next_tokens():
    x, y = windows(torch.arange(11), 3)
    assert x.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]] and y.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert windows(torch.arange(11), 3, limit=2)[0].shape == (2, 3)


def test_the_splits_are_windows_of_seq_len_token_ids_served_in_batches(corpus, tmp_path):
    dm = datamodule(corpus, tmp_path / "cache", "dataset.batch_size=8")
    dm.setup("fit")
    assert dm.input_shape == (32,) and dm.tokenizer_vocab_size() <= 256
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == y.shape == (8, 32) and x.dtype == torch.int64 and torch.equal(x[:, 1:], y[:, :-1])
    assert all(len(dm.splits[s]) >= 20 for s in ("train", "val", "test"))
    text = dm.tokenizer().decode(x[0].tolist())
    assert text and text in (corpus / "train.txt").read_text()  # byte-level BPE decodes back to the text


def test_limit_caps_every_splits_windows_at_the_first_ones(corpus, tmp_path):
    whole, capped = datamodule(corpus, tmp_path / "a"), datamodule(corpus, tmp_path / "b", "dataset.limit=5")
    whole.setup(), capped.setup()
    for split in ("train", "val", "test"):
        assert len(capped.splits[split]) == 5
        assert torch.equal(capped.splits[split].x, whole.splits[split].x[:5])


def test_the_tokenizer_and_the_token_ids_are_cached_by_the_files_hashes(corpus, tmp_path):
    cache = tmp_path / "cache"
    datamodule(corpus, cache).setup()
    cached = sorted(p.name for p in cache.iterdir())
    assert len(cached) == 4 and cached[0].startswith("bpe256-")  # the tokenizer, then tokens of each file
    again = datamodule(corpus, cache)
    again.setup()
    assert sorted(p.name for p in cache.iterdir()) == cached
    with open(corpus / "valid.txt", "a") as f:
        f.write("A new line.\n")
    datamodule(corpus, cache).setup()
    assert len(list(cache.iterdir())) == 5  # the changed file's tokens again; the tokenizer is the train file's


def test_a_prefix_encodes_to_the_first_ids_of_the_whole_text(corpus, tmp_path):
    text = (corpus / "train.txt").read_text()
    tokenizer = T.trained_bpe(corpus / "train.txt", 300, tmp_path)
    whole = tokenizer.encode(text, add_special_tokens=False).ids
    for at_least in (1, 7, 100, 1000):
        prefix = T.prefix_tokens(text, tokenizer, at_least)
        assert len(prefix) >= at_least and prefix.tolist() == whole[: len(prefix)]


def test_a_tokenizer_folder_is_used_as_it_is(corpus, tmp_path):
    tokenizer = T.trained_bpe(corpus / "train.txt", 280, tmp_path / "trained")
    (tmp_path / "tok").mkdir()
    tokenizer.save(str(tmp_path / "tok" / "tokenizer.json"))
    dm = datamodule(corpus, tmp_path / "cache", f"dataset.tokenizer={tmp_path / 'tok'}")
    dm.setup()
    assert dm.tokenizer_vocab_size() == tokenizer.get_vocab_size()
    first = dm.splits["train"].x[0].tolist()
    assert first == tokenizer.encode((corpus / "train.txt").read_text()).ids[:32]


def test_calibration_draws_seeded_windows_at_any_position_of_the_training_tokens(corpus, tmp_path):
    dm = datamodule(corpus, tmp_path / "cache", "dataset.limit=20")
    dm.setup()
    a, b, c = dm.calibration_samples(16, 0), dm.calibration_samples(16, 0), dm.calibration_samples(16, 1)
    assert a.shape == (16, 32) and torch.equal(a, b) and not torch.equal(a, c)
    train = dm.splits["train"]
    stream = torch.cat([train.x.flatten(), train.y[-1, -1:]])  # the tokens the 20 training windows cover
    starts = [next(i for i in range(len(stream) - 31) if torch.equal(stream[i: i + 32], w)) for w in a]
    assert any(s % 32 for s in starts)  # not only window boundaries


def test_the_fingerprint_follows_the_data(corpus, tmp_path):
    before = datamodule(corpus, tmp_path / "cache").fingerprint()
    assert datamodule(corpus, tmp_path / "cache", "dataset.batch_size=4").fingerprint() == before
    (corpus / "test.txt").write_text((corpus / "test.txt").read_text() + "Another line.\n")
    assert datamodule(corpus, tmp_path / "cache").fingerprint() != before


@pytest.mark.parametrize("change, setting", [
    (lambda c: (c / "valid.txt").unlink(), "dataset.val_file"),
    (lambda c: (c / "test.txt").write_text(""), "dataset.test_file"),
    (lambda c: (c / "test.txt").write_text("Too short.\n"), "dataset.seq_len"),
])
def test_missing_empty_or_too_short_files_are_one_clear_error(change, setting, corpus, tmp_path):
    change(corpus)
    with pytest.raises(ConfigError) as err:
        datamodule(corpus, tmp_path / "cache").check()
    assert err.value.setting == setting


@pytest.mark.parametrize("overrides, setting", [
    (["dataset.vocab_size=100"], "dataset.vocab_size"),
    (["dataset.tokenizer=."], "dataset.tokenizer"),
    (["dataset.seq_len=0"], "dataset.seq_len"),
    (["dataset.limit=0"], "dataset.limit"),
])
def test_bad_settings_are_one_clear_error(overrides, setting, corpus, tmp_path):
    with pytest.raises(ConfigError) as err:
        datamodule(corpus, tmp_path / "cache", *overrides).check()
    assert err.value.setting == setting and err.value.fix


@pytest.mark.skipif(not (SHARED_DATA / "python-docs").is_dir(), reason="../shared/data is not here")
def test_the_shared_corpus_is_the_default_and_loads_with_a_small_limit(tmp_path):
    cfg = compose_config(*LM_DATA, "dataset.limit=40", f"dataset.cache_dir={tmp_path}")
    assert cfg.dataset.data_dir.endswith("python-docs")
    dm = build(cfg.dataset)
    dm.setup()
    assert {s: len(dm.splits[s]) for s in ("train", "val", "test")} == {"train": 40, "val": 40, "test": 40}
    assert "Python" in dm.tokenizer().decode(dm.splits["train"].x.flatten().tolist())
