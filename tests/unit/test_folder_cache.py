"""Folders decoded once and cached: exact pixels, reuse, rebuilds, atomic writes, bad input, fingerprints, CLI."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from prunelab.data import (
    CachedFolderDataModule,
    ImageFolderDataModule,
    SyntheticDataModule,
    folder_cache,
)
from prunelab.data.folder_cache import cached_images
from prunelab.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
CIFAR_JPEG = SHARED_DATA / "CIFAR-10-images"
MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def write_image(path: Path, size=(8, 8), seed: int = 0) -> Path:
    """A random RGB image at `path`, in the format its suffix names."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def write_folder(root: Path, classes: int = 3, per_class: int = 4, size=(8, 8), suffix: str = ".jpg") -> Path:
    """root/class<c>/<i><suffix>: random images, one subfolder per class."""
    for c in range(classes):
        for i in range(per_class):
            write_image(root / f"class{c}" / f"{i}{suffix}", size, seed=100 * c + i)
    return root


def datamodule(root: Path, cache_dir: Path, **kwargs) -> CachedFolderDataModule:
    settings = {"input_shape": [3, 8, 8], "num_classes": 3, "mean": MEAN, "std": STD, "val_fraction": 0.25, **kwargs}
    return CachedFolderDataModule(root=str(root), cache_dir=str(cache_dir), **settings)


@pytest.fixture
def decodes(monkeypatch) -> list:
    """The paths decoded from now on."""
    seen, decode = [], folder_cache.decode_image
    monkeypatch.setattr(folder_cache, "decode_image", lambda path: seen.append(path) or decode(path))
    return seen


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_cached_images_equal_pil_decode(tmp_path, suffix):
    root = write_folder(tmp_path / "data", suffix=suffix)
    for _ in range(2):  # decoded, then read back from the cache
        x, y = cached_images(root, "dataset.root", tmp_path / "cache")
        files = sorted(root.glob(f"*/*{suffix}"))
        expected = np.stack([np.array(Image.open(path).convert("RGB")) for path in files])
        assert x.dtype == torch.uint8 and torch.equal(x, torch.from_numpy(expected).permute(0, 3, 1, 2))
        assert y.tolist() == [int(path.parent.name.removeprefix("class")) for path in files]


def test_second_build_reads_the_cache_without_decoding(tmp_path, decodes):
    root = write_folder(tmp_path / "data")
    first = cached_images(root, "dataset.root", tmp_path / "cache")
    assert len(decodes) == 12
    second = cached_images(root, "dataset.root", tmp_path / "cache")
    assert len(decodes) == 12 and all(torch.equal(a, b) for a, b in zip(first, second))


@pytest.mark.parametrize("change", ["resize", "add", "remove"])
def test_cache_is_rebuilt_when_a_file_changes(tmp_path, decodes, change):
    root = write_folder(tmp_path / "data", per_class=2)
    cached_images(root, "dataset.root", tmp_path / "cache")
    target = root / "class1" / "0.jpg"
    if change == "resize":  # same name, new content of another byte size
        before = target.stat().st_size
        write_image(target, seed=999)
        assert target.stat().st_size != before
    elif change == "add":
        write_image(root / "class1" / "2.jpg", seed=999)
    else:
        target.unlink()
    decodes.clear()
    x, _ = cached_images(root, "dataset.root", tmp_path / "cache")
    files = sorted(root.glob("*/*.jpg"))
    assert len(decodes) == len(files) == len(x)
    assert torch.equal(x, torch.stack([torch.from_numpy(np.array(Image.open(f))).permute(2, 0, 1) for f in files]))


def test_a_write_killed_midway_leaves_no_cache_and_a_leftover_temp_file_is_never_read(tmp_path, monkeypatch):
    root, cache = write_folder(tmp_path / "data"), tmp_path / "cache"

    def crash(obj, path):
        Path(path).write_bytes(b"half a tensor")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        cached_images(root, "dataset.root", cache)
    assert list(cache.iterdir()) == []
    monkeypatch.undo()
    # What a SIGKILL mid-write leaves: a half-written temporary file beside the final name.
    final = folder_cache.cache_path(root, folder_cache.image_files(root, "dataset.root"), cache)
    leftover = cache / f"{final.name}.abc123.tmp"
    leftover.write_bytes(b"half a tensor")
    x, _ = cached_images(root, "dataset.root", cache)
    assert final.is_file() and len(x) == 12
    assert torch.equal(torch.load(final, weights_only=True)["x"], x)


def make_mixed_sizes(root: Path) -> Path:
    return write_image(root / "class1" / "9.jpg", size=(8, 9))


def make_non_image(root: Path) -> Path:
    path = root / "class2" / "notes.txt"
    path.write_text("not an image")
    return path


def make_empty_class(root: Path) -> Path:
    path = root / "class3"
    path.mkdir()
    return path


def make_corrupt_jpeg(root: Path) -> Path:
    path = root / "class0" / "2.jpg"
    path.write_bytes(path.read_bytes()[:60])
    return path


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (make_mixed_sizes, "is 8x9 pixels but"),
        (make_non_image, "is not an image file"),
        (make_empty_class, "holds no images"),
        (make_corrupt_jpeg, "cannot be decoded"),
    ],
)
def test_bad_folders_give_one_line_naming_the_file_before_anything_is_cached(tmp_path, make, problem):
    root, cache = write_folder(tmp_path / "data"), tmp_path / "cache"
    bad = make(root)
    with pytest.raises(ConfigError) as error:
        datamodule(root, cache, num_classes=len(list(root.iterdir()))).prepare_data()
    message = str(error.value)
    assert message.startswith("dataset.root: ") and "\n" not in message
    assert str(bad) in message and problem in message and "Fix: " in message
    assert not cache.exists() or list(cache.iterdir()) == []


def test_batches_are_the_normalised_pixels_and_splits_are_fixed(tmp_path):
    root = write_folder(tmp_path / "data", per_class=8)
    test_root = write_folder(tmp_path / "test", per_class=2)
    dm = datamodule(root, tmp_path / "cache", test_root=str(test_root), split_seed=3)
    dm.setup("fit")
    assert {name: len(split) for name, split in dm.splits.items()} == {"train": 18, "val": 6, "test": 6}
    x, y = next(iter(dm.test_dataloader()))
    pixels, labels = cached_images(test_root, "dataset.test_root", tmp_path / "cache")
    mean, std = torch.tensor(MEAN).view(3, 1, 1), torch.tensor(STD).view(3, 1, 1)
    assert torch.allclose(x, (pixels.float() / 255 - mean) / std, atol=1e-5) and torch.equal(y, labels)
    again = datamodule(root, tmp_path / "cache", test_root=str(test_root), split_seed=3)
    again.setup("fit")
    assert torch.equal(again.splits["val"].x, dm.splits["val"].x)


def test_limit_keeps_a_seeded_subset_of_each_split(tmp_path):
    root = write_folder(tmp_path / "data", per_class=8)
    dm = datamodule(root, tmp_path / "cache", test_root=str(write_folder(tmp_path / "test")), limit=5)
    dm.setup("fit")
    assert {name: len(split) for name, split in dm.splits.items()} == {"train": 5, "val": 5, "test": 5}
    assert len(set(dm.splits["test"].y.tolist())) > 1  # drawn from every class, not the first files


def test_input_shape_is_checked_against_the_images(tmp_path):
    root = write_folder(tmp_path / "data")
    with pytest.raises(ConfigError, match=r"dataset.input_shape: \[3, 32, 32\] does not match the data's \[3, 8, 8\]"):
        datamodule(root, tmp_path / "cache", input_shape=[3, 32, 32]).check()


def test_folder_fingerprints_change_with_the_files_only(tmp_path):
    root = write_folder(tmp_path / "data")
    cached = datamodule(root, tmp_path / "cache")
    per_sample = ImageFolderDataModule(root=str(root), input_shape=[3, 8, 8], num_classes=3, image_size=8)
    before = cached.fingerprint()
    assert before == per_sample.fingerprint() == datamodule(root, tmp_path / "elsewhere").fingerprint()
    write_image(root / "class0" / "9.jpg", seed=7)
    assert cached.fingerprint() != before


def test_in_memory_fingerprints_change_with_the_data():
    def fingerprint(**kwargs):
        return SyntheticDataModule(input_shape=[1, 4, 4], num_classes=3, num_samples=64, num_test=16, **kwargs).fingerprint()

    assert fingerprint(data_seed=0) == fingerprint(data_seed=0, split_seed=5)
    assert fingerprint(data_seed=0) != fingerprint(data_seed=1)


def run_cli(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m prunelab` with a tiny schedule and no logger; fails the test if the run fails."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    tiny = ["schedule.pretrain_epochs=1", "schedule.finetune_epochs=1", "schedule.targets=[0.5]", "logger=none",
            "save_model=false", "trainer.enable_progress_bar=false", f"hydra.run.dir={cwd / 'run'}"]
    proc = subprocess.run([sys.executable, "-m", "prunelab", *tiny, *overrides], check=False, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow  # starts the command or a multirun: the slow suite (pytest -m slow) runs it
def test_cli_trains_on_a_cached_jpeg_folder(tmp_path):
    root = write_folder(tmp_path / "data", classes=2, per_class=24, size=(32, 32))
    run_cli("dataset=cifar10_jpeg", "model=resnet20", "dataset.num_classes=2", f"dataset.root={root}",
            "dataset.test_root=null", f"dataset.cache_dir={tmp_path / 'cache'}", "dataset.batch_size=16", cwd=tmp_path)
    assert (tmp_path / "run" / "results.csv").is_file() and len(list((tmp_path / "cache").glob("*.pt"))) == 1


@pytest.mark.slow
@pytest.mark.skipif(not CIFAR_JPEG.is_dir(), reason=f"CIFAR-10 JPEGs not found at {CIFAR_JPEG}")
def test_cli_trains_on_cifar10_jpegs(tmp_path):
    """The real folders (decoding them takes about a minute on one core), 256 images per split."""
    run_cli("dataset=cifar10_jpeg", "model=resnet20", f"dataset.root={CIFAR_JPEG / 'train'}",
            f"dataset.test_root={CIFAR_JPEG / 'test'}", f"dataset.cache_dir={tmp_path / 'cache'}",
            "dataset.limit=256", cwd=tmp_path)
    assert (tmp_path / "run" / "results.csv").is_file()
