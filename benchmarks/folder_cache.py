"""Data: samples per second of a training epoch of the CIFAR-10 JPEG folder served by prunelab's cached
datamodule (uint8 tensors in memory, whole batches, crop+flip on the batch) against the per-sample path
(ImageFolder: PIL decode -> RandomCrop(32, 4) -> RandomHorizontalFlip -> ToTensor -> Normalize, batch 128).
Also times decoding the folder into a fresh cache once, and reading that cache back.

    python benchmarks/folder_cache.py [--repeats 5] [--per-sample 5000] [--data-dir ../shared/data]

The per-sample path is timed on a random subset of `--per-sample` training images (a full epoch takes
minutes); samples per second do not depend on the epoch's length.
"""

import argparse
import tempfile
from pathlib import Path

import torch
from common import config, median, threads, timed
from torch.utils.data import DataLoader, Subset
from torchvision import transforms as T
from torchvision.datasets import ImageFolder

from prunelab.config import build
from prunelab.data import random_crop_flip
from prunelab.data.folder_cache import cached_images

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def drain(loader, augment=None) -> int:
    """Samples in one pass over `loader`, applying `augment` to each batch of images."""
    n = 0
    for x, _ in loader:
        n += len(augment(x) if augment else x)
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--per-sample", type=int, default=5000, help="training images timed on the per-sample path")
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA))
    args = parser.parse_args()
    threads(1)
    root = Path(args.data_dir) / "CIFAR-10-images" / "train"
    with tempfile.TemporaryDirectory() as cache_dir:
        decode = timed(lambda: cached_images(root, "dataset.root", Path(cache_dir)))
        read = timed(lambda: cached_images(root, "dataset.root", Path(cache_dir)))
        cfg = config("dataset=cifar10_jpeg", f"dataset.root={root}", "dataset.test_root=null",
                     f"dataset.cache_dir={cache_dir}")
        dm = build(cfg.dataset)
        dm.setup("fit")
    generator = torch.Generator().manual_seed(0)
    cached_loader = dm.train_dataloader()
    transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                           T.Normalize(dm.source.mean, dm.source.std)])
    subset = torch.randperm(len(dm.splits["train"]), generator=generator)[: args.per_sample].tolist()
    plain_set = Subset(ImageFolder(root, transform=transform), subset)
    plain_loader = DataLoader(plain_set, batch_size=cfg.dataset.batch_size, shuffle=True, generator=generator)
    n_cached, n_plain = drain(cached_loader), drain(plain_loader)  # warm-up
    cached, plain = [], []
    for _ in range(args.repeats):  # alternating, so both paths see the same load from other processes
        cached.append(n_cached / timed(lambda: drain(cached_loader, lambda x: random_crop_flip(x, generator))))
        plain.append(n_plain / timed(lambda: drain(plain_loader)))

    print(f"decode {root} into a fresh cache: {decode:.1f} s; read it back: {read:.2f} s (once each)")
    print(f"CIFAR-10 JPEG training epoch, batch {cfg.dataset.batch_size}, crop+flip+normalise, median of {args.repeats}")
    print(f"{f'prunelab cached batches ({n_cached} images)':44} {median(cached):12,.0f} samples/s")
    print(f"{f'per-sample PIL ImageFolder ({n_plain} images)':44} {median(plain):12,.0f} samples/s")
    print(f"ratio {median(cached) / median(plain):.1f}x")


if __name__ == "__main__":
    main()
