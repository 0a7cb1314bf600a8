"""Mask computation: global magnitude pruning of ResNet-50 (25.6M weights) to 90% with prunelab
against torch.nn.utils.prune.global_unstructured doing the same; checks the masks are equal.

    python benchmarks/mask_computation.py [--repeats 5]
"""

import argparse
import copy

import torch
import torch.nn.utils.prune as tprune
import torchvision
from common import median, threads, timed

from prunelab.pruning import Magnitude, ScoreContext, UnstructuredPruner
from prunelab.pruning.masks import full_masks, prunable_parameters


def prunelab_masks(model, target):
    pruner = UnstructuredPruner(Magnitude(), "global", exclude_output=False)
    params = pruner.parameters(model)
    ctx = ScoreContext(batches=lambda: [], loss=None, generator=torch.Generator())
    return pruner.prune(model, full_masks(params), target, ctx)


def torch_masks(model, target):
    """torch.nn.utils.prune over the same weights; returns its masks and removes the reparametrisation."""
    params = prunable_parameters(model, exclude_output=False)
    modules = {n: m for n, m in model.named_modules()}
    pairs = [(modules[n.rsplit(".", 1)[0]], "weight") for n in params]
    tprune.global_unstructured(pairs, pruning_method=tprune.L1Unstructured, amount=target)
    masks = {n: m.weight_mask.bool() for n, (m, _) in zip(params, pairs)}
    for m, name in pairs:
        tprune.remove(m, name)
    return masks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--target", type=float, default=0.9)
    args = parser.parse_args()
    threads()
    torch.manual_seed(0)
    model = torchvision.models.resnet50()
    n = sum(p.numel() for p in prunable_parameters(model, exclude_output=False).values())
    ours, theirs = [], []
    for _ in range(args.repeats):
        a = copy.deepcopy(model)
        b = copy.deepcopy(model)
        ours.append(timed(lambda: prunelab_masks(a, args.target)))
        theirs.append(timed(lambda: torch_masks(b, args.target)))
    mine, ref = prunelab_masks(model, args.target), torch_masks(copy.deepcopy(model), args.target)
    same = all(torch.equal(mine[k], ref[k]) for k in mine)
    print(f"ResNet-50, {n / 1e6:.1f}M prunable weights, global magnitude to {args.target:.0%}, "
          f"median of {args.repeats}")
    print(f"{'prunelab':28} {median(ours):8.3f} s")
    print(f"{'torch.nn.utils.prune':28} {median(theirs):8.3f} s")
    print(f"speedup {median(theirs) / median(ours):.2f}x, same mask: {same}")


if __name__ == "__main__":
    main()
