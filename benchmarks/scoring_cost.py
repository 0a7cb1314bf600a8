"""Cost of scoring against the forward/backward passes it needs, on ResNet-20 (CIFAR shapes, random data).

Prints the median over repeats of each criterion's time and its ratio to the plain passes:
Taylor and SNIP need one forward/backward per batch, GraSP two forwards, a backward and a
double backward per batch, one SynFlow round one forward/backward of a single sample in float64.
Wanda and SparseGPT (50%, unstructured) score the same samples as calibration inputs, against one
forward pass of them without gradients: Wanda needs one, SparseGPT one partial pass per layer (each
stopped at its layer) plus a Cholesky factorisation and the OBS sweep per layer.
Run: PYTHONPATH=src python benchmarks/scoring_cost.py [--batches 4] [--repeats 5]
"""

import argparse
import copy

import torch
import torch.nn.functional as F
from common import median_seconds

from prunelab.models import CifarResNet
from prunelab.pruning import (
    SNIP,
    GraSP,
    ScoreContext,
    SynFlow,
    Taylor,
    prunable_parameters,
)
from prunelab.pruning.calibration import Calibration
from prunelab.pruning.masks import full_masks
from prunelab.pruning.sparsegpt import SparseGPT
from prunelab.pruning.wanda import Wanda


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = CifarResNet(20, input_shape=(3, 32, 32), num_classes=10).eval()
    params = prunable_parameters(model)
    data = [(torch.randn(args.batch_size, 3, 32, 32), torch.randint(0, 10, (args.batch_size,)))
            for _ in range(args.batches)]
    ctx = ScoreContext(batches=lambda: iter(data), loss=F.cross_entropy, generator=torch.Generator())

    def passes():
        for x, y in data:
            torch.autograd.grad(F.cross_entropy(model(x), y), list(params.values()))

    twin = copy.deepcopy(model).double()
    twin_weights = list(prunable_parameters(twin).values())

    def one_sample_pass():
        torch.autograd.grad(twin(torch.ones(1, 3, 32, 32, dtype=torch.float64)).sum(), twin_weights)

    def forwards():
        with torch.no_grad():
            for x, _ in data:
                model(x)

    calibration = Calibration(num_samples=args.batches * args.batch_size, batch_size=args.batch_size)
    sparsegpt = SparseGPT(calibration)

    def sparsegpt_prune():
        twin = copy.deepcopy(model)
        sparsegpt.prune(twin, full_masks(sparsegpt.parameters(twin)), 0.5, ctx)

    base = median_seconds(passes, args.repeats)
    forward = median_seconds(forwards, args.repeats)
    single = median_seconds(one_sample_pass, args.repeats)
    rows = [
        ("forward/backward x batches", base, base),
        ("taylor", median_seconds(lambda: Taylor(args.batches)(model, params, ctx), args.repeats), base),
        ("snip", median_seconds(lambda: SNIP(args.batches)(model, params, ctx), args.repeats), base),
        ("grasp", median_seconds(lambda: GraSP(args.batches)(model, params, ctx), args.repeats), base),
        ("float64 forward/backward, 1 sample", single, single),
        ("synflow (one round)", median_seconds(lambda: SynFlow((3, 32, 32))(model, params, ctx), args.repeats), single),
        ("forward x batches, no gradients", forward, forward),
        ("wanda", median_seconds(lambda: Wanda(calibration)(model, params, ctx), args.repeats), forward),
        ("sparsegpt 50% (prune, incl. model copy)", median_seconds(sparsegpt_prune, args.repeats), forward),
    ]
    print(f"resnet20, {args.batches} batches of {args.batch_size}, median of {args.repeats}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'':38s} {'ms':>9s} {'ratio':>7s}")
    for name, seconds, ref in rows:
        print(f"{name:38s} {seconds * 1e3:9.1f} {seconds / ref:7.2f}")


if __name__ == "__main__":
    main()
