"""Measured CPU speedup of structural pruning beside the MAC reduction, in PyTorch and in ONNX Runtime.

ResNet-18 and MobileNetV2 (torchvision, random weights, 224x224) lose 50% of their channels
(pruning=l1_filter: layer scope, channels removed); the dense and pruned models are timed at batch
sizes 1 and 32 on 2 CPU threads (`--threads`): the median of `--repeats` forward passes after `--warmup` untimed ones,
dense and pruned passes alternating so that a change in machine load affects both. Both models are also
exported to ONNX (`prunelab.training.deploy`) and timed in ONNX Runtime with as many threads.

    python benchmarks/structural_latency.py [--repeats 7] [--warmup 2] [--threads 2]
"""

import argparse
import copy
import tempfile
from pathlib import Path

import torch
import torch_pruning as tp
import torchvision
from common import median
from torch import nn

from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.structural import StructuralPruner
from prunelab.training.deploy import export_onnx, onnx_latency_ms, onnx_session
from prunelab.training.meter import latency_ms, layer_costs

SHAPE = (3, 224, 224)


def prune_half(model: nn.Module) -> nn.Module:
    pruned = copy.deepcopy(model)
    batch = [(torch.randn(1, *SHAPE), torch.zeros(1, dtype=torch.long))]
    ctx = ScoreContext(batches=lambda: batch, loss=nn.functional.cross_entropy, generator=torch.Generator())
    StructuralPruner(tp.importance.GroupMagnitudeImportance(p=1), scope="layer").prune(pruned, {}, 0.5, ctx)
    return pruned


def macs(model: nn.Module) -> int:
    return sum(c.macs for c in layer_costs(model, torch.zeros(1, *SHAPE)).values())


def interleaved_ms(a: nn.Module, b: nn.Module, x: torch.Tensor, repeats: int, warmup: int) -> tuple[float, float]:
    """Median forward times of `a` and `b`, timed in alternation so that load changes hit both alike."""
    latency_ms(a, x, 1, warmup)
    latency_ms(b, x, 1, warmup)
    times = [(latency_ms(a, x, 1, 0), latency_ms(b, x, 1, 0)) for _ in range(repeats)]
    return median([t for t, _ in times]), median([t for _, t in times])


def onnx_ms(models: tuple[nn.Module, nn.Module], x: torch.Tensor, threads: int, repeats: int,
            warmup: int) -> tuple[float, float]:
    """Median ONNX Runtime times of both models over `x`, alternating as `interleaved_ms` does."""
    with tempfile.TemporaryDirectory() as tmp:
        sessions = [onnx_session(export_onnx(m, SHAPE, Path(tmp) / f"{i}.onnx"), threads)
                    for i, m in enumerate(models)]
        for session in sessions:
            onnx_latency_ms(session, x, 1, warmup)
        times = [tuple(onnx_latency_ms(s, x, 1, 0) for s in sessions) for _ in range(repeats)]
    return median([t for t, _ in times]), median([t for _, t in times])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (on a busy machine 1 is steadier)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats} alternating "
          f"passes after {args.warmup} warm-up passes\n")
    print("| model | batch | dense ms | pruned ms | measured speedup | ONNX Runtime dense ms | pruned ms | speedup "
          "| MAC reduction | params reduction |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for arch in ("resnet18", "mobilenet_v2"):
        dense = torchvision.models.get_model(arch, weights=None).eval()
        pruned = prune_half(dense).eval()
        mac_ratio = macs(dense) / macs(pruned)
        param_ratio = sum(p.numel() for p in dense.parameters()) / sum(p.numel() for p in pruned.parameters())
        for batch_size in (1, 32):
            x = torch.randn(batch_size, *SHAPE)
            dense_ms, pruned_ms = interleaved_ms(dense, pruned, x, args.repeats, args.warmup)
            ort_dense, ort_pruned = onnx_ms((dense, pruned), x, args.threads, args.repeats, args.warmup)
            print(f"| {arch} | {batch_size} | {dense_ms:.1f} | {pruned_ms:.1f} | {dense_ms / pruned_ms:.2f}x "
                  f"| {ort_dense:.1f} | {ort_pruned:.1f} | {ort_dense / ort_pruned:.2f}x "
                  f"| {mac_ratio:.2f}x | {param_ratio:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
