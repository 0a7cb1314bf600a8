"""Compute metrics: MACs (all and of the nonzero weights), parameters per layer, measured latency.

MACs are the multiply-accumulates of Conv and Linear layers and of attention's two matrix products,
for one input image; norms, activations and pooling are not counted. For a language model (`CausalLM`) they
are its Linear layers' per token (the LM head included), and latency is timed on windows of random token ids.
"""

import math
import statistics
import time
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from prunelab import results as R
from prunelab.errors import ConfigError
from prunelab.models.attention import SelfAttention
from prunelab.models.causal_lm import CausalLM
from prunelab.modes import eval_mode


@dataclass
class LayerCost:
    """One layer's weights (all, nonzero) and MACs (all, of the nonzero weights) for one input."""

    params: int
    nonzero: int
    macs: int
    nonzero_macs: float


def _density(*weights: torch.Tensor) -> list[float]:
    return [int(torch.count_nonzero(w)) / w.numel() if w.numel() else 0.0 for w in weights]


def _weighted(parts: list[tuple[torch.Tensor | None, int]]) -> LayerCost:
    # parts: (weight, MACs); a None weight marks MACs of activation products (always dense)
    weights = [w for w, _ in parts if w is not None]
    nonzero_macs = sum(macs * (_density(w)[0] if w is not None else 1.0) for w, macs in parts)
    return LayerCost(sum(w.numel() for w in weights), sum(int(torch.count_nonzero(w)) for w in weights),
                     sum(macs for _, macs in parts), nonzero_macs)


def _cost(m: nn.Module, inputs: tuple, out) -> LayerCost | None:
    if isinstance(m, nn.modules.conv._ConvNd):
        return _weighted([(m.weight, out.numel() * m.weight[0].numel())])
    if isinstance(m, nn.Linear):
        return _weighted([(m.weight, out.numel() * m.in_features)])
    if isinstance(m, nn.MultiheadAttention):  # its projections run inside F.multi_head_attention_forward
        q, k = inputs[0], inputs[1]
        lq, lk = (q.shape[-2], k.shape[-2]) if m.batch_first or q.dim() == 2 else (q.shape[0], k.shape[0])
        e = m.embed_dim
        return _weighted([(m.in_proj_weight, (lq + 2 * lk) * e * e), (None, 2 * lq * lk * e),
                              (m.out_proj.weight, lq * e * e)])
    if isinstance(m, SelfAttention):  # its qkv and proj Linears are counted as Linears
        n = inputs[0].shape[1]
        return _weighted([(None, 2 * n * n * (m.qkv.out_features // 3))])
    return None


@torch.no_grad()
def layer_costs(model: nn.Module, example: torch.Tensor) -> dict[str, LayerCost]:
    """Weights and MACs of every Conv, Linear and attention layer of `model` for the one-image batch `example`."""
    costs, hooks = {}, []
    for name, m in model.named_modules():
        def hook(mod, inputs, out, name=name):
            cost = _cost(mod, inputs, out[0] if isinstance(out, tuple) else out)
            if cost is not None:
                costs[name] = cost
        hooks.append(m.register_forward_hook(hook))
    try:
        with eval_mode(model):
            model(example)
    finally:
        for h in hooks:
            h.remove()
    return costs


def unit_input(model: nn.Module, input_shape: Sequence[int], device: torch.device) -> torch.Tensor:
    """What compute is counted for: one zero image of `input_shape`; for a language model one token."""
    if isinstance(model, CausalLM):
        return torch.zeros(1, 1, dtype=torch.long, device=device)
    return torch.zeros(1, *input_shape, device=device)


def timed_batch(model: nn.Module, input_shape: Sequence[int], size: int, device: torch.device) -> torch.Tensor:
    """`size` random inputs of `input_shape` to time: standard normal images; a language model's token ids."""
    if isinstance(model, CausalLM):
        return torch.randint(model.vocab_size, (size, *input_shape), device=device)
    return torch.randn(size, *input_shape, device=device)


@torch.no_grad()
def latency_ms(model: nn.Module, batch: torch.Tensor, repeats: int, warmup: int) -> float:
    """Median wall time of one forward pass over `batch`, in ms, after `warmup` untimed passes."""
    sync = torch.cuda.synchronize if batch.is_cuda else (lambda: None)
    times = []
    with eval_mode(model):
        for i in range(warmup + repeats):
            sync()
            start = time.perf_counter()
            model(batch)
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


LATENCY_STAGES = ("all", "final", "none")


class Meter:
    """The `metrics` config: measures a model's compute per stage.

    `latency_batch_size` inputs (images; a language model's windows) per timed forward pass, `latency_repeats`
    timed passes (the median is reported) after `latency_warmup` untimed ones, at the stages `latency_stages`
    names: `all`, `final` (the last stage only) or `none`; elsewhere `latency_ms` is NaN. `test_before_ft`: also
    evaluate the test split right after each pruning step (the one-shot result, `test_<metric>_before_ft`).
    """

    def __init__(self, latency_batch_size: int = 1, latency_repeats: int = 20, latency_warmup: int = 3,
                 latency_stages: str = "all", test_before_ft: bool = False):
        settings = [("latency_batch_size", latency_batch_size, 1), ("latency_repeats", latency_repeats, 1),
                    ("latency_warmup", latency_warmup, 0)]
        for key, value, least in settings:
            if value < least:
                raise ConfigError(f"metrics.{key}", f"must be >= {least}, got {value}", f"set it to {least} or more")
        if latency_stages not in LATENCY_STAGES:
            raise ConfigError("metrics.latency_stages", f"{latency_stages!r} is not one of {list(LATENCY_STAGES)}",
                              "set metrics.latency_stages=all, final or none")
        self.batch_size, self.repeats, self.warmup = latency_batch_size, latency_repeats, latency_warmup
        self.latency_stages, self.test_before_ft = latency_stages, test_before_ft

    def times(self, stage: int, last_stage: int) -> bool:
        """Whether latency is measured at `stage` of a run whose last stage is `last_stage`."""
        return self.latency_stages == "all" or (self.latency_stages == "final" and stage == last_stage)

    def measure(self, model: nn.Module, input_shape: Sequence[int], params: int, nonzero: int,
                dense: dict | None, latency: bool = True) -> tuple[dict, dict[str, LayerCost]]:
        """(results columns, per-layer costs) of `model`; `dense`: the dense stage's row (None: this is it);
        without `latency`, `latency_ms` is NaN."""
        device = next(model.parameters()).device
        costs = layer_costs(model, unit_input(model, input_shape, device))
        macs = sum(c.macs for c in costs.values())
        nonzero_macs = sum(c.nonzero_macs for c in costs.values())
        dense = dense or {R.PARAMS: params, R.MACS: macs}
        columns = {
            R.MACS: macs,
            R.NONZERO_MACS: round(nonzero_macs),
            R.COMPRESSION: dense[R.PARAMS] / nonzero if nonzero else math.inf,
            R.SPEEDUP: dense[R.MACS] / nonzero_macs if nonzero_macs else math.inf,
            R.LATENCY: latency_ms(model, timed_batch(model, input_shape, self.batch_size, device),
                                  self.repeats, self.warmup) if latency else math.nan,
        }
        return columns, costs


def nonzero_macs(model: nn.Module, input_shape: Sequence[int]) -> float:
    """MACs of the nonzero weights of `model` for one input of `input_shape` (see `unit_input`)."""
    example = unit_input(model, input_shape, next(model.parameters()).device)
    return sum(c.nonzero_macs for c in layer_costs(model, example).values())
