"""Data: samples per second of one training epoch of MNIST served by prunelab's in-memory datamodule
against the plain torchvision loop (per-sample PIL -> ToTensor -> Normalize, DataLoader batch 128).

    python benchmarks/data_throughput.py [--repeats 5] [--data-dir ../shared/data]
"""

import argparse
from pathlib import Path

import torch
from common import median, threads, timed
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from prunelab.data import MNISTDataModule

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def drain(loader) -> int:
    n = 0
    for x, _ in loader:
        n += len(x)
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA))
    args = parser.parse_args()
    threads()
    dm = MNISTDataModule(input_shape=[1, 28, 28], num_classes=10, data_dir=args.data_dir, download=False,
                         batch_size=128)
    dm.setup("fit")
    ours_loader = dm.train_dataloader()
    plain_set = datasets.MNIST(args.data_dir, train=True, download=False, transform=transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]))
    plain_loader = DataLoader(plain_set, batch_size=128, shuffle=True, num_workers=0,
                              generator=torch.Generator().manual_seed(0))
    n_ours, n_plain = drain(ours_loader), drain(plain_loader)
    ours = [n_ours / timed(lambda: drain(ours_loader)) for _ in range(args.repeats)]
    plain = [n_plain / timed(lambda: drain(plain_loader)) for _ in range(args.repeats)]
    print(f"MNIST training epoch, batch 128, median of {args.repeats}")
    print(f"{'prunelab (in-memory tensors)':34} {median(ours):12,.0f} samples/s")
    print(f"{'torchvision per-sample loop':34} {median(plain):12,.0f} samples/s")
    print(f"ratio {median(ours) / median(plain):.1f}x")


if __name__ == "__main__":
    main()
