"""Cost of scoring against the forward/backward passes it needs, on ResNet-20 (CIFAR shapes, random data).

Prints the median over repeats of each criterion's time and its ratio to the plain passes:
Taylor and SNIP need one forward/backward per batch, GraSP two forwards, a backward and a
double backward per batch, one SynFlow round one forward/backward of a single sample in float64.
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

    base = median_seconds(passes, args.repeats)
    single = median_seconds(one_sample_pass, args.repeats)
    rows = [
        ("forward/backward x batches", base, base),
        ("taylor", median_seconds(lambda: Taylor(args.batches)(model, params, ctx), args.repeats), base),
        ("snip", median_seconds(lambda: SNIP(args.batches)(model, params, ctx), args.repeats), base),
        ("grasp", median_seconds(lambda: GraSP(args.batches)(model, params, ctx), args.repeats), base),
        ("float64 forward/backward, 1 sample", single, single),
        ("synflow (one round)", median_seconds(lambda: SynFlow((3, 32, 32))(model, params, ctx), args.repeats), single),
    ]
    print(f"resnet20, {args.batches} batches of {args.batch_size}, median of {args.repeats}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'':38s} {'ms':>9s} {'ratio':>7s}")
    for name, seconds, ref in rows:
        print(f"{name:38s} {seconds * 1e3:9.1f} {seconds / ref:7.2f}")


if __name__ == "__main__":
    main()
