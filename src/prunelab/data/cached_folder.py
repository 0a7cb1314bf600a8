"""Small equal-size images in class folders, decoded once, cached on disk and served as whole batches."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from prunelab.data.augment import BatchAugmentation
from prunelab.data.folder import Folders, class_folders
from prunelab.data.folder_cache import cached_images, default_cache_dir, image_files, image_shape
from prunelab.data.module import DataModule
from prunelab.data.sampling import WholeBatches
from prunelab.data.settings import BatchSize, Cutout, Shape, Workers, check_at_least
from prunelab.data.split import Split, take
from prunelab.data.tensors import NormalisedBatches


@dataclass(frozen=True)
class CachedImages:
    """The images of `folders` decoded once into uint8 tensors cached in `cache_dir`, keyed by each folder's
    file list and sizes; served scaled to [0, 1] and normalised with the per-channel `mean` and `std`, not
    resized. `limit` keeps at most that many images of each split (train, val, test), chosen by `split_seed`.
    """

    folders: Folders
    mean: tuple[float, ...]
    std: tuple[float, ...]
    cache_dir: Path
    limit: int | None

    def check(self, shape: Shape) -> None:
        """Also lists the folders: a class folder without images or a file that is no image is an error."""
        self.folders.check()
        if self.limit is not None:
            check_at_least("dataset.limit", self.limit, 1)
        files = {setting: image_files(folder, setting) for setting, folder in self.folders.named().items()}
        root = self.folders.root
        shape.check_matches(image_shape(root / files["dataset.root"][0][0]), len(class_folders(root)))

    def prepare(self) -> None:
        """Decode and cache the folders that are not cached yet (once per machine)."""
        for setting, folder in self.folders.named().items():
            cached_images(folder, setting, self.cache_dir)

    def splits(self, split: Split) -> dict[str, NormalisedBatches]:
        """Read the cached folders (decoding any not cached yet) and make the splits."""
        images = {setting.removeprefix("dataset."): cached_images(folder, setting, self.cache_dir)
                  for setting, folder in self.folders.named().items()}
        n_test = len(images["test_root"][1]) if "test_root" in images else None
        splits = {}
        for name, (folder, idx) in self.folders.splits(len(images["root"][1]), n_test, split).items():
            x, y = images[folder]
            idx = take(idx, self.limit, split.split_seed)
            splits[name] = NormalisedBatches(x[idx], y[idx], self.mean, self.std)
        return splits

    def fingerprint(self) -> str:
        return self.folders.fingerprint()


class CachedFolderDataModule(DataModule):
    """Images of one size under `root/<class>/` (and `test_root`), decoded once into uint8 tensors.

    The decoded folders are cached in `cache_dir` (null: `default_cache_dir()`), keyed by each folder's file
    list and sizes, so later runs read them back without decoding. Batches are served whole from memory,
    scaled to [0, 1] and normalised with the per-channel `mean` and `std`; images are not resized. With
    `augment`, training batches get a random crop of the 4-pixel-padded image and a horizontal flip (the
    padding is 0 after normalisation, the mean colour, as for dataset=cifar10), and with `cutout` > 0 a square of
    that side zeroed in each (DeVries & Taylor 2017).
    `limit` keeps at most that many images of each split (train, val, test), chosen by `split_seed`.
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
        root: str,
        mean: Sequence[float],
        std: Sequence[float],
        test_root: str | None = None,
        test_fraction: float = 0.2,
        cache_dir: str | None = None,
        limit: int | None = None,
        augment: bool = False,
        cutout: Cutout = 0,
        device: str = "cpu",
    ):
        folders = Folders.of(root, test_root, test_fraction)
        cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        super().__init__(Shape.of(input_shape, num_classes), Split(val_fraction, split_seed),
                         CachedImages(folders, tuple(mean), tuple(std), cache, limit),
                         WholeBatches(batch_size, eval_batch_size, num_workers, seed, device),
                         BatchAugmentation(seed, augment, cutout))
