"""Datamodules: every config builds, splits are fixed by split_seed, batch order by (seed, epoch)."""

import inspect
from pathlib import Path
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
from hydra._internal.utils import _locate
from omegaconf import OmegaConf
from PIL import Image

from prunelab.config import build
from prunelab.data import (
    CIFAR10DataModule,
    DigitsDataModule,
    ImageFolderDataModule,
    MNISTDataModule,
    SyntheticDataModule,
    random_crop_flip,
)
from prunelab.data.augment import cutout
from prunelab.data.split import split_indices
from prunelab.data.tensors import TensorSource
from prunelab.errors import ConfigError
from tests.helpers import CONF, SHARED_DATA, text_corpus

HAS_MNIST = (SHARED_DATA / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()
DATASET_YAMLS = sorted((CONF / "dataset").glob("*.yaml"))
# The first file each torchvision data set reads, relative to data_dir: errors must name it.
FIRST_FILE = {
    "mnist": "MNIST/raw/train-images-idx3-ubyte",
    "fashion_mnist": "FashionMNIST/raw/train-images-idx3-ubyte",
    "cifar10": "cifar-10-batches-py/data_batch_1",
    "cifar100": "cifar-100-python/train",
}


def image_folder(root: Path, classes: int = 3, per_class: int = 8, size=(10, 12)) -> Path:
    """A folder of tiny PNGs, one subfolder per class."""
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", size, (20 * c, 10 * i, 0)).save(root / f"class{c}" / f"{i}.png")
    return root


def dataset_config(path: Path, **overrides):
    """A dataset node under a top-level node holding `seed`, as the harness composes it."""
    cfg = OmegaConf.create({"seed": 0, "dataset": OmegaConf.load(path)})
    cfg.dataset.merge_with(overrides)
    return cfg


def first_train_batch(datamodule):
    datamodule.setup("fit")
    return next(iter(datamodule.train_dataloader()))


@pytest.mark.parametrize("path", DATASET_YAMLS, ids=lambda path: path.stem)
def test_every_dataset_config_builds(path, tmp_path):
    name = path.stem
    if name == "imagefolder":
        cfg = dataset_config(path, root=str(image_folder(tmp_path)), num_classes=3, image_size=8)
    elif name == "cifar10_jpeg":  # the real folders' layout, tiny: 32x32 images of 10 classes
        folders = [image_folder(tmp_path / split, classes=10, per_class=4, size=(32, 32)) for split in ("train", "test")]
        cfg = dataset_config(path, root=str(folders[0]), test_root=str(folders[1]), cache_dir=str(tmp_path / "cache"))
    elif name == "mnist" and HAS_MNIST:
        cfg = dataset_config(path, data_dir=str(SHARED_DATA))
    elif name == "text":  # token windows of a small corpus: ids and their next tokens, no classes
        cfg = dataset_config(path, data_dir=str(text_corpus(tmp_path / "corpus")), cache_dir=str(tmp_path / "cache"),
                             vocab_size=256, seq_len=16)
        del cfg.dataset["defaults"]  # Hydra's, read when it composes the config
        x, y = first_train_batch(build(cfg.dataset))
        assert x.shape[1:] == (16,) and x.dtype == torch.int64 and torch.equal(x[:, 1:], y[:, :-1])
        return
    elif name in FIRST_FILE:
        cfg = dataset_config(path, data_dir=str(tmp_path), download=False)
        with pytest.raises(ConfigError, match="dataset.download=true") as error:
            build(cfg.dataset).check()
        assert str(tmp_path / FIRST_FILE[name]) in str(error.value)
        return
    else:
        cfg = dataset_config(path)
    assert cfg.dataset.name == name
    datamodule = build(cfg.dataset)
    datamodule.check()
    x, y = first_train_batch(datamodule)
    assert tuple(x.shape[1:]) == tuple(cfg.dataset.input_shape)
    assert x.dtype == torch.float32 and 0 <= y.min() and y.max() < cfg.dataset.num_classes


@pytest.mark.parametrize("path", DATASET_YAMLS, ids=lambda path: path.stem)
def test_every_dataset_constructor_states_each_of_its_settings(path):
    """The config check reads a dataset's settings off its `_target_`'s signature: no `**kwargs` to follow."""
    node = OmegaConf.to_container(OmegaConf.load(path))
    params = inspect.signature(_locate(node["_target_"])).parameters
    assert all(p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in params.values())
    assert {key for key in node if key not in ("name", "_target_", "defaults")} <= set(params)


def test_image_folder_splits_and_test_root(tmp_path):
    common = {"input_shape": [3, 8, 8], "num_classes": 3, "image_size": 8, "split_seed": 1}
    carved = ImageFolderDataModule(root=str(image_folder(tmp_path / "a", per_class=10)), **common)
    carved.setup("fit")
    assert {name: len(split) for name, split in carved.splits.items()} == {"train": 22, "val": 2, "test": 6}
    separate = ImageFolderDataModule(
        root=str(tmp_path / "a"), test_root=str(image_folder(tmp_path / "b", per_class=2)), **common
    )
    separate.setup("fit")
    assert {name: len(split) for name, split in separate.splits.items()} == {"train": 27, "val": 3, "test": 6}
    x, y = next(iter(separate.test_dataloader()))
    assert x.shape == (6, 3, 8, 8) and y.tolist() == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize(
    ("layout", "kwargs", "setting"),
    [
        ("none", {}, "dataset.root"),
        ("one class", {}, "dataset.root"),
        ("three classes", {"num_classes": 4}, "dataset.num_classes"),
        ("three classes", {"test_root": "elsewhere"}, "dataset.test_root"),
    ],
)
def test_bad_image_folders_are_config_errors(tmp_path, layout, kwargs, setting):
    if layout != "none":
        image_folder(tmp_path / "root", classes=1 if layout == "one class" else 3, per_class=1)
    kwargs = {"input_shape": [3, 64, 64], "num_classes": 3, **kwargs}
    if "test_root" in kwargs:
        kwargs["test_root"] = str(image_folder(tmp_path / kwargs["test_root"], classes=2, per_class=1))
    with pytest.raises(ConfigError, match=setting):
        ImageFolderDataModule(root=str(tmp_path / "root"), **kwargs).check()


def test_split_indices_are_disjoint_covering_and_fixed_by_seed():
    kept, held = split_indices(100, 0.2, seed=5)
    assert len(held) == 20 and sorted(torch.cat([kept, held]).tolist()) == list(range(100))
    assert torch.equal(held, split_indices(100, 0.2, seed=5)[1])
    assert not torch.equal(held, split_indices(100, 0.2, seed=6)[1])


def digits(**kwargs) -> DigitsDataModule:
    datamodule = DigitsDataModule(input_shape=[1, 8, 8], num_classes=10, **kwargs)
    datamodule.setup("fit")
    return datamodule


def test_digits_splits_sizes_and_normalisation():
    splits = digits().splits
    sizes = {name: len(split) for name, split in splits.items()}
    assert sizes == {"train": 1294, "val": 144, "test": 359}  # 1797 = 80% (90% train + 10% val) + 20%
    train_x = splits["train"].x
    assert train_x.shape[1:] == (1, 8, 8) and train_x.dtype == torch.float32
    assert abs(train_x.mean()) < 1e-4 and abs(train_x.std() - 1) < 1e-3


def test_digits_split_depends_only_on_split_seed():
    first, same, other = digits(split_seed=0, seed=1), digits(split_seed=0, seed=2), digits(split_seed=1)
    for split in ("val", "test"):
        assert torch.equal(first.splits[split].x, same.splits[split].x)
        assert not torch.equal(first.splits[split].x, other.splits[split].x)


def test_setup_is_cached():
    datamodule = digits()
    splits = datamodule.splits
    datamodule.setup("test")
    assert datamodule.splits is splits


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"val_fraction": 0.0}, "dataset.val_fraction"),
        ({"val_fraction": 1.5}, "dataset.val_fraction"),
        ({"input_shape": [1, 28, 28]}, "dataset.input_shape"),
        ({"num_classes": 7}, "dataset.num_classes"),
    ],
)
def test_bad_settings_are_config_errors(kwargs, setting):
    datamodule = DigitsDataModule(**{"input_shape": [1, 8, 8], "num_classes": 10, **kwargs})
    with pytest.raises(ConfigError, match=setting):
        datamodule.check()


# The data sets held in memory, whose training split `dataset.limit` caps.
IN_MEMORY = ["digits", "synthetic", "mnist", "fashion_mnist", "cifar10", "cifar100"]


def in_memory(name: str, **overrides):
    """The built datamodule of `conf/dataset/<name>.yaml` with `overrides`, set up (MNIST from ../shared/data)."""
    if name == "mnist":
        if not HAS_MNIST:
            pytest.skip("MNIST is not in ../shared/data")
        overrides = {"data_dir": str(SHARED_DATA), **overrides}
    elif name in FIRST_FILE:
        pytest.skip(f"{name}'s files are not in ../shared/data")
    datamodule = build(dataset_config(CONF / "dataset" / f"{name}.yaml", **overrides).dataset)
    datamodule.setup("fit")
    return datamodule


@pytest.mark.parametrize("name", IN_MEMORY)
def test_limit_caps_the_training_split_of_an_in_memory_data_set_and_keeps_validation_and_test(name):
    whole, capped = in_memory(name), in_memory(name, limit=50)
    assert len(capped.splits["train"]) == 50 < len(whole.splits["train"])
    for split in ("val", "test"):
        assert len(capped.splits[split]) == len(whole.splits[split])
    again = in_memory(name, limit=50)
    assert torch.equal(again.splits["train"].y, capped.splits["train"].y), "the choice is fixed by split_seed"


def test_limit_must_be_at_least_one_and_a_folder_data_set_does_not_take_it():
    with pytest.raises(ConfigError, match="dataset.limit"):
        DigitsDataModule(input_shape=[1, 8, 8], num_classes=10, limit=0).check()
    names = {path.stem for path in DATASET_YAMLS if "limit" in OmegaConf.load(path)}
    assert names == {*IN_MEMORY, "cifar10_jpeg", "text"}  # text: windows of each split
    assert "limit" not in inspect.signature(ImageFolderDataModule).parameters


@pytest.mark.skipif(not HAS_MNIST, reason="MNIST is not in ../shared/data")
def test_mnist_loads_from_shared_folder_without_writing():
    datamodule = MNISTDataModule(input_shape=[1, 28, 28], num_classes=10, data_dir=str(SHARED_DATA), download=True)
    datamodule.prepare_data()  # files present: nothing is fetched or written (the folder is read-only)
    x, _ = first_train_batch(datamodule)
    sizes = {name: len(split) for name, split in datamodule.splits.items()}
    assert sizes["train"] + sizes["val"] == 60000 and sizes["test"] == 10000
    assert x.shape[1:] == (1, 28, 28)


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100003 + epoch))


def epoch_order(datamodule, epoch: int) -> torch.Tensor:
    loader = datamodule.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return torch.cat([x for x, _ in loader])


@pytest.mark.parametrize("epoch", [0, 3])
def test_train_order_is_the_seeded_permutation_for_the_epoch(epoch):
    datamodule = digits(seed=7)
    train_x = datamodule.splits["train"].x
    expected = epoch_permutation(len(train_x), seed=7, epoch=epoch)
    assert torch.equal(epoch_order(datamodule, epoch), train_x[expected])  # every index exactly once
    assert torch.equal(epoch_order(digits(seed=7), epoch), train_x[expected])
    assert not torch.equal(epoch_order(datamodule, epoch + 1), train_x[expected])


def test_eval_loaders_are_in_order():
    datamodule = digits(seed=7)
    for split, loader in (("val", datamodule.val_dataloader()), ("test", datamodule.test_dataloader())):
        assert torch.equal(torch.cat([x for x, _ in loader]), datamodule.splits[split].x)


def test_synthetic_honours_shape_and_class_count():
    datamodule = SyntheticDataModule(input_shape=[3, 16, 16], num_classes=7, num_samples=300, num_test=100)
    x, _ = first_train_batch(datamodule)
    assert x.shape[1:] == (3, 16, 16) and len(datamodule.splits["test"]) == 100
    assert set(torch.cat([y for _, y in datamodule.train_dataloader()]).tolist()) == set(range(7))


def test_synthetic_is_learnable_but_noisy():
    datamodule = SyntheticDataModule(input_shape=[1, 8, 8], num_classes=10)
    datamodule.setup("fit")
    train, test = datamodule.splits["train"], datamodule.splits["test"]
    means = torch.stack([train.x[train.y == c].mean(0) for c in range(10)]).flatten(1)
    accuracy = (torch.cdist(test.x.flatten(1), means).argmin(1) == test.y).float().mean()
    assert 0.5 < accuracy < 1.0  # a nearest-class-mean rule, far above chance (0.1)


class RandomImages(TensorSource):
    """120 random 32x32 colour images of 10 classes, so CIFAR-10's augmentation is tested without its files."""

    def load(self):
        generator = torch.Generator().manual_seed(0)
        x = torch.randint(256, (120, 3, 32, 32), dtype=torch.uint8, generator=generator)
        y = torch.randint(10, (120,), generator=generator)
        return x[:100], y[:100], x[100:], y[100:]


def fake_cifar(**kwargs) -> CIFAR10DataModule:
    """CIFAR-10's datamodule over random images."""
    datamodule = CIFAR10DataModule(input_shape=[3, 32, 32], num_classes=10, batch_size=16, eval_batch_size=16, **kwargs)
    datamodule.source = RandomImages()
    datamodule.setup("fit")
    return datamodule


def test_augmentation_changes_training_batches_only():
    datamodule = fake_cifar(augment=True)
    batch = next(iter(datamodule.train_dataloader()))
    datamodule.trainer = SimpleNamespace(training=False)
    assert datamodule.on_after_batch_transfer(batch, 0) is batch
    datamodule.trainer = SimpleNamespace(training=True)
    x, y = datamodule.on_after_batch_transfer(batch, 0)
    assert x.shape == batch[0].shape and torch.equal(y, batch[1]) and not torch.equal(x, batch[0])
    again = fake_cifar(augment=True)
    again.trainer = SimpleNamespace(training=True)
    assert torch.equal(again.on_after_batch_transfer(batch, 0)[0], x)  # seeded, so repeatable
    second = datamodule.on_after_batch_transfer(batch, 0)[0]
    assert not torch.equal(second, x)  # each batch gets its own draw
    resumed = fake_cifar(augment=True)
    resumed.trainer = SimpleNamespace(training=True)
    resumed.load_state_dict(again.state_dict())  # as from a checkpoint taken after one batch
    assert torch.equal(resumed.on_after_batch_transfer(batch, 0)[0], second)


def test_random_crop_flip_gives_crops_of_the_padded_image():
    x = torch.randn(6, 3, 8, 8)
    out = random_crop_flip(x, torch.Generator().manual_seed(0), padding=2)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for image, source in zip(out, padded):
        crops = [source[:, i : i + 8, j : j + 8] for i in range(5) for j in range(5)]
        assert any(torch.equal(image, crop) or torch.equal(image, crop.flip(-1)) for crop in crops)


def test_cutout_zeroes_the_square_around_each_centre_clipped_at_the_border():
    x = torch.ones(64, 2, 6, 7)
    generator = torch.Generator().manual_seed(3)
    out = cutout(x, generator, size=4)
    # the centres, drawn as cutout draws them: row then column for all images
    replay = torch.Generator().manual_seed(3)
    rows, cols = torch.randint(6, (64,), generator=replay), torch.randint(7, (64,), generator=replay)
    for image, r, c in zip(out, rows.tolist(), cols.tolist()):
        expected = torch.ones(6, 7)
        expected[max(r - 2, 0):r + 2, max(c - 2, 0):c + 2] = 0  # rows r-2 .. r+1, columns c-2 .. c+1
        assert torch.equal(image, expected.expand(2, 6, 7))
    zeroed = (out[:, 0] == 0).sum((1, 2))
    assert zeroed.max() == 16 and zeroed.min() < 16  # whole squares inside, clipped ones at the border


def test_cutout_follows_crop_and_flip_and_needs_augmentation():
    batch = (torch.randn(16, 3, 32, 32), torch.zeros(16))
    cropped, cut = fake_cifar(augment=True), fake_cifar(augment=True, cutout=8)
    cropped.trainer = cut.trainer = SimpleNamespace(training=True)
    before, after = cropped.on_after_batch_transfer(batch, 0)[0], cut.on_after_batch_transfer(batch, 0)[0]
    # the same crops and flips (their padding is 0), then a square of each image zeroed
    zero_before, zero_after = (before == 0).all(1), (after == 0).all(1)
    assert torch.equal(after, before.masked_fill(zero_after[:, None], 0))
    assert (zero_after >= zero_before).all() and zero_after.sum((1, 2)).min() >= 16  # 8 x 8, clipped to >= 4 x 4
    assert (zero_after & ~zero_before).sum((1, 2)).max() == 64
    with pytest.raises(ConfigError, match="dataset.cutout.*set dataset.augment=true"):
        fake_cifar(augment=False, cutout=8)


class Recorder(pl.LightningModule):
    """Records the inputs of every training and validation batch."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(3 * 32 * 32, 10)
        self.train_seen, self.val_seen = [], []

    def training_step(self, batch, batch_idx):
        self.train_seen.append(batch[0])
        return torch.nn.functional.cross_entropy(self.layer(batch[0].flatten(1)), batch[1])

    def validation_step(self, batch, batch_idx):
        self.val_seen.append(batch[0])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


@pytest.mark.parametrize("augment", [False, True])
def test_trainer_sets_epoch_order_and_augments_training_only(augment):
    datamodule, model = fake_cifar(augment=augment, seed=3), Recorder()
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, datamodule=datamodule)
    train_x = datamodule.splits["train"].x
    orders = [epoch_permutation(len(train_x), seed=3, epoch=epoch) for epoch in (0, 1)]
    assert torch.equal(torch.cat(model.train_seen), train_x[torch.cat(orders)]) != augment
    assert torch.equal(torch.cat(model.val_seen), torch.cat([datamodule.splits["val"].x] * 2))
