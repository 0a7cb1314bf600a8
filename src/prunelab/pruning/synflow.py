"""Iterative synaptic flow (Tanaka et al. 2020): a data-free score that avoids layer collapse."""

from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call

from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.gradient import scoring_mode


class SynFlow:
    """|w * dR/dw|, R the summed output of the network with every parameter and buffer made positive.

    The input is all ones of `input_shape` (one sample); the pass runs in float64 with BatchNorm in
    eval mode, as in the authors' code, on positive float64 copies of the tensors, so the caller's
    weights, dtype and train/eval mode are left as they were. Use it with the pruner's `rounds`
    (100 in the paper): each round scores the model masked by the round before.
    """

    def __init__(self, input_shape: Sequence[int]):
        self.input_shape = tuple(int(d) for d in input_shape)

    def __call__(self, model: nn.Module, params: dict[str, nn.Parameter], ctx: ScoreContext):
        tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
        positive = {k: t.detach().abs().double() if t.is_floating_point() else t for k, t in tensors.items()}
        weights = [positive[name].requires_grad_() for name in params]
        ones = torch.ones(1, *self.input_shape, dtype=torch.float64, device=weights[0].device)
        with scoring_mode(model):
            grads = torch.autograd.grad(functional_call(model, positive, (ones,)).sum(), weights)
        return {name: (g * w.detach()).abs_() for name, g, w in zip(params, grads, weights)}
