"""Saliencies from loss gradients on training batches: Taylor, SNIP and GraSP.

The model is scored in eval mode (no dropout; BatchNorm uses, and does not update, its running
statistics), as in the reference harness of Tanaka et al. 2020, and its mode is restored after.
Gradients come from `torch.autograd.grad`, so `.grad` and DDP's gradient hooks are untouched.
Under DDP every rank scores its own batches and the sums are reduced over ranks (before any
nonlinearity that would not commute with the sum), so every rank prunes the same weights.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice
from typing import Literal

import torch
from torch import nn

from prunelab.errors import ConfigError
from prunelab.modes import eval_mode
from prunelab.pruning import distributed
from prunelab.pruning.criteria import ScoreContext


@contextmanager
def scoring_mode(model: nn.Module):
    """Eval mode with gradients enabled; every submodule's train/eval mode is restored on exit."""
    with eval_mode(model), torch.enable_grad():
        yield


def batch_losses(model: nn.Module, ctx: ScoreContext, num_batches: int, temperature: float = 1.0) -> Iterator:
    """The loss of each of the first `num_batches` training batches, logits divided by `temperature`."""
    device = next(model.parameters()).device
    for x, y in islice(ctx.batches(), num_batches):
        yield ctx.loss(model(x.to(device)) / temperature, y.to(device))


def sample_losses(model: nn.Module, ctx: ScoreContext, num_batches: int, temperature: float = 1.0) -> Iterator:
    """The loss of each sample of the first `num_batches` training batches, logits divided by `temperature`."""
    device = next(model.parameters()).device
    for x, y in islice(ctx.batches(), num_batches):
        for xi, yi in zip(x.to(device).split(1), y.to(device).split(1)):
            yield ctx.loss(model(xi) / temperature, yi)


def summed_gradients(model: nn.Module, weights: list, ctx: ScoreContext, num_batches: int,
                     temperature: float = 1.0, squared: bool = False) -> list[torch.Tensor]:
    """dL/dw summed over the first `num_batches` batches of every rank, in the model's current mode.

    `squared`: the mean over those batches' samples of (dL/dw)^2 instead, the empirical Fisher diagonal (as
    Optimal Brain Damage's Hessian diagonal), taken in eval mode, summed over ranks. Weights the loss does
    not use get zeros.
    """
    total = [torch.zeros_like(w) for w in weights]
    if squared:
        samples = 0
        with scoring_mode(model):  # eval mode: BatchNorm cannot normalise, and must not learn from, one sample
            for loss in sample_losses(model, ctx, num_batches, temperature):
                grads = torch.autograd.grad(loss, weights, allow_unused=True, materialize_grads=True)
                torch._foreach_add_(total, torch._foreach_mul(grads, grads))
                samples += 1
        torch._foreach_div_(total, max(samples, 1))
    else:
        for loss in batch_losses(model, ctx, num_batches, temperature):
            torch._foreach_add_(total, torch.autograd.grad(loss, weights, allow_unused=True, materialize_grads=True))
    distributed.all_reduce_sum(total)
    return total


def _check_batches(num_batches: int) -> int:
    if num_batches < 1:
        raise ConfigError("pruning.criterion.num_batches", f"must be >= 1, got {num_batches}",
                          "score on at least one training batch")
    return num_batches


class Taylor:
    """First-order Taylor saliency |w * dL/dw| over the first `num_batches` training batches.

    `accumulate` says what is summed over the batches (and ranks): "saliency", sum_b |w * g_b|, the absolute
    value taken per batch (this criterion's form before the setting existed); "gradient", |w * sum_b g_b|, w
    times the gradient of the loss of all those batches together (LLM-Pruner, Ma et al. 2023: the element-wise
    first-order importance |dL(D)/dW * W| of the loss over the calibration set D, one backward pass in its code).
    On a causal LM the batches are training windows of seq_len tokens and L their next-token cross-entropy.
    """

    ACCUMULATIONS = ("saliency", "gradient")

    def __init__(self, num_batches: int = 16, accumulate: Literal["saliency", "gradient"] = "saliency"):
        if accumulate not in self.ACCUMULATIONS:
            raise ConfigError("pruning.criterion.accumulate", f"unknown accumulation {accumulate!r}",
                              f"use one of {list(self.ACCUMULATIONS)}")
        self.num_batches, self.accumulate = _check_batches(num_batches), accumulate

    def __call__(self, model: nn.Module, params: dict[str, nn.Parameter], ctx: ScoreContext):
        weights = list(params.values())
        values = [w.detach() for w in weights]
        if self.accumulate == "gradient":
            with scoring_mode(model):
                scores = torch._foreach_mul(summed_gradients(model, weights, ctx, self.num_batches), values)
            torch._foreach_abs_(scores)
            return dict(zip(params, scores))
        scores = [torch.zeros_like(v) for v in values]
        with scoring_mode(model):
            for loss in batch_losses(model, ctx, self.num_batches):
                saliency = torch._foreach_mul(torch.autograd.grad(loss, weights), values)
                torch._foreach_abs_(saliency)
                torch._foreach_add_(scores, saliency)
        distributed.all_reduce_sum(scores)
        return dict(zip(params, scores))


class SNIP:
    """Connection sensitivity (Lee et al. 2019): |g * w| / sum(|g * w|) over all prunable weights.

    g is the loss gradient summed over the first `num_batches` training batches (the paper uses one
    mini-batch) and over ranks. Meant for pruning at initialisation (`schedule.pretrain_epochs=0`),
    but works on trained weights too.
    """

    def __init__(self, num_batches: int = 1):
        self.num_batches = _check_batches(num_batches)

    def __call__(self, model: nn.Module, params: dict[str, nn.Parameter], ctx: ScoreContext):
        weights = list(params.values())
        with scoring_mode(model):
            grads = summed_gradients(model, weights, ctx, self.num_batches)
        scores = torch._foreach_mul(grads, [w.detach() for w in weights])
        torch._foreach_abs_(scores)
        total = torch.stack([s.sum() for s in scores]).sum()
        torch._foreach_div_(scores, total.clamp_min(torch.finfo(total.dtype).tiny))
        return dict(zip(params, scores))


class GraSP:
    """Gradient signal preservation (Wang et al. 2020): scores theta * Hg, higher kept.

    Sign convention: the paper removes the weights with the HIGHEST S(-theta) = -theta * Hg; we keep
    the highest -S = theta * Hg, which is the same ranking (and the score of Tanaka et al.'s reference
    code). H and g are of the loss of logits / `temperature` (T = 200 in the paper's code), g summed
    over the first `num_batches` batches and ranks, Hg by double backpropagation over the same batches.
    The scores are not normalised (a positive factor does not change the ranking).
    """

    def __init__(self, num_batches: int = 1, temperature: float = 200.0):
        self.num_batches, self.temperature = _check_batches(num_batches), temperature

    def __call__(self, model: nn.Module, params: dict[str, nn.Parameter], ctx: ScoreContext):
        weights = list(params.values())
        with scoring_mode(model):
            g = summed_gradients(model, weights, ctx, self.num_batches, self.temperature)
            hg = [torch.zeros_like(v) for v in g]
            for loss in batch_losses(model, ctx, self.num_batches, self.temperature):
                grads = torch.autograd.grad(loss, weights, create_graph=True)
                z = torch.stack([(a * b).sum() for a, b in zip(grads, g)]).sum()
                torch._foreach_add_(hg, torch.autograd.grad(z, weights, allow_unused=True, materialize_grads=True))
        distributed.all_reduce_sum(hg)
        return dict(zip(params, torch._foreach_mul(hg, [w.detach() for w in weights])))
