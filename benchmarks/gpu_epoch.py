"""GPU path: a CIFAR ResNet-20/56 prunelab epoch (data held on the device, batches augmented there, bf16
autocast, channels_last) against a plain PyTorch loop with the same settings, and a 90%-sparse epoch against a
dense one.

    python benchmarks/gpu_epoch.py [--repeats 5] [--epochs 2] [--models resnet20,resnet56] [--device cuda]
                                   [--precision bf16-mixed] [--no-channels-last] [--data cifar10|synthetic]
                                   [--samples 2560]

CIFAR-10 is read from $PRUNELAB_DATA (else ../shared/data) without downloading; `--data synthetic` uses
`--samples` random 3x32x32 images instead. Prints per-model medians of interleaved repetitions and the ratios.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from common import config, prepared
from finetune_overhead import SHARED_DATA, print_epochs

from prunelab.data.augment import random_crop_flip
from prunelab.seeds import augment_generator


def overrides(model: str, args: argparse.Namespace) -> list[str]:
    """The prunelab settings of one case: the model and data, where they run, at what precision and memory format."""
    data = (["dataset=cifar10", "dataset.download=false", f"dataset.data_dir={os.environ.get('PRUNELAB_DATA', SHARED_DATA)}"]
            if args.data == "cifar10" else
            ["dataset=synthetic", "dataset.input_shape=[3,32,32]", f"dataset.num_samples={args.samples}"])
    trainer = "gpu" if args.device.startswith("cuda") else "cpu"
    return [f"model={model}", *data, f"trainer={trainer}", f"++dataset.device={args.device}",
            f"++trainer.precision={args.precision}", f"channels_last={str(args.channels_last).lower()}",
            "logger=none", f"schedule.pretrain_epochs={args.epochs}",
            f"schedule.finetune_epochs={args.epochs + 1}", "schedule.targets=[0.9]"]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_epochs(cfg, epochs: int, precision: str) -> list[float]:
    """Seconds per epoch of a plain loop over the run's model, data (on its device), augmentation, memory format
    and optimizer."""
    with tempfile.TemporaryDirectory() as tmp:
        parts = prepared(cfg, Path(tmp))
    dm = parts.datamodule
    dm.setup("fit")
    device = torch.device(dm.batching.device)
    model = parts.module.model.to(device)  # channels_last already if cfg.channels_last
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    optimizer = parts.module.optimizer_factory(model.parameters())
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision.startswith("bf16"))
    augment, drawn, times = dm.augmentation is not None and dm.augmentation.enabled, 0, []
    model.train()
    for epoch in range(epochs):
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(epoch)
        sync(device)
        start = time.perf_counter()
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if augment:
                x, drawn = random_crop_flip(x, augment_generator(dm.batching.seed, drawn)), drawn + 1
            x = x.contiguous(memory_format=memory_format)
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
        sync(device)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--models", default="resnet20,resnet56")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precision", default="bf16-mixed")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--data", choices=["cifar10", "synthetic"], default="cifar10")
    parser.add_argument("--samples", type=int, default=2560)
    args = parser.parse_args()
    layout = "channels_last" if args.channels_last else "contiguous"
    print(f"{args.data} on {args.device}, {args.precision}, {layout}, median of {args.repeats}")
    print(f"{'model':10} {'plain s/epoch':>14} {'prunelab dense':>15} {'ratio':>6} {'90% sparse':>11} {'ratio':>6}")
    for model in args.models.split(","):
        cfg = config(*overrides(model, args))
        print_epochs(model, 10, cfg, args.epochs, args.repeats,
                     lambda c, epochs: plain_epochs(c, epochs, args.precision))


if __name__ == "__main__":
    main()
