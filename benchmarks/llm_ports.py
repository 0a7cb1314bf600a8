"""Plain ports of the papers' own pruning code for LLMs, the reference that prunelab's Wanda and SparseGPT are
checked and timed against (tests/unit/test_sequential.py, benchmarks/lm_pruning.py).

`prune_wanda` follows locuslab/wanda `lib/prune.py` (`prepare_calibration_input`, `prune_wanda`) with
`lib/layerwrapper.py` (`WrappedGPT.add_batch`); `prune_sparsegpt` follows its `prune_sparsegpt` with
`lib/sparsegpt.py` (IST-DASLab/sparsegpt's `SparseGPT.add_batch` and `fasterprune`). Kept as they are: one
calibration sample per layer call, the running means of the statistics, Wanda's stable row sort, SparseGPT's
per-block threshold `tmp <= sort(tmp)[int(numel * sparsity)]`. Changed for transformers 5 and other layouts:
the layer list is passed in, the first layer's positional and keyword arguments are captured whole (LLaMA's
`position_embeddings` among them), and no device maps.
"""

import math

import torch
from torch import nn


def find_layers(module: nn.Module, name: str = "") -> dict[str, nn.Linear]:
    """The Linear layers under `module`, by dotted name."""
    if type(module) is nn.Linear:
        return {name: module}
    found = {}
    for child_name, child in module.named_children():
        found.update(find_layers(child, f"{name}.{child_name}" if name else child_name))
    return found


@torch.no_grad()
def calibration_inputs(model: nn.Module, layers: nn.ModuleList, samples: torch.Tensor):
    """(`model`: prunelab's CausalLM, its forward taking token ids.) The first layer's input for each sample (one sequence at a time) and the other arguments it received."""
    inps = torch.zeros((len(samples), samples.shape[1], model.lm.config.hidden_size))
    cache = {"i": 0, "args": (), "kwargs": {}}

    class Catcher(nn.Module):
        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, inp, *args, **kwargs):
            inps[cache["i"]] = inp
            cache["i"] += 1
            cache["args"], cache["kwargs"] = args, kwargs
            raise ValueError

    layers[0] = Catcher(layers[0])
    for sample in samples:
        try:
            model(sample.unsqueeze(0))
        except ValueError:
            pass
    layers[0] = layers[0].module
    return inps, torch.zeros_like(inps), cache["args"], cache["kwargs"]


class WrappedGPT:
    """Wanda's per-layer statistic: the running mean over samples of the squared input norms of each column."""

    def __init__(self, layer: nn.Linear):
        self.layer = layer
        self.scaler_row = torch.zeros(layer.weight.shape[1])
        self.nsamples = 0

    def add_batch(self, inp, out):
        if len(inp.shape) == 2:
            inp = inp.unsqueeze(0)
        tmp = inp.shape[0]
        inp = inp.reshape((-1, inp.shape[-1])).t()
        self.scaler_row *= self.nsamples / (self.nsamples + tmp)
        self.nsamples += tmp
        inp = inp.type(torch.float32)
        self.scaler_row += torch.norm(inp, p=2, dim=1) ** 2 / self.nsamples


class SparseGPT:
    """SparseGPT's per-layer Hessian and its `fasterprune` (Algorithm 1 with lazy batch updates)."""

    def __init__(self, layer: nn.Linear):
        self.layer = layer
        self.rows, self.columns = layer.weight.shape
        self.H = torch.zeros((self.columns, self.columns))
        self.nsamples = 0

    def add_batch(self, inp, out):
        if len(inp.shape) == 2:
            inp = inp.unsqueeze(0)
        tmp = inp.shape[0]
        inp = inp.reshape((-1, inp.shape[-1])).t()
        self.H *= self.nsamples / (self.nsamples + tmp)
        self.nsamples += tmp
        inp = math.sqrt(2 / self.nsamples) * inp.float()
        self.H += inp.matmul(inp.t())

    def fasterprune(self, sparsity, prune_n=0, prune_m=0, blocksize=128, percdamp=0.01):
        W = self.layer.weight.data.clone().float()
        H = self.H
        del self.H
        dead = torch.diag(H) == 0
        H[dead, dead] = 1
        W[:, dead] = 0
        damp = percdamp * torch.mean(torch.diag(H))
        diag = torch.arange(self.columns)
        H[diag, diag] += damp
        H = torch.linalg.cholesky(H)
        H = torch.cholesky_inverse(H)
        Hinv = torch.linalg.cholesky(H, upper=True)
        for i1 in range(0, self.columns, blocksize):
            i2 = min(i1 + blocksize, self.columns)
            count = i2 - i1
            W1 = W[:, i1:i2].clone()
            Q1 = torch.zeros_like(W1)
            Err1 = torch.zeros_like(W1)
            Hinv1 = Hinv[i1:i2, i1:i2]
            if prune_n == 0:
                tmp = W1 ** 2 / (torch.diag(Hinv1).reshape((1, -1))) ** 2
                thresh = torch.sort(tmp.flatten())[0][int(tmp.numel() * sparsity)]
                mask1 = tmp <= thresh
            else:
                mask1 = torch.zeros_like(W1) == 1
            for i in range(count):
                w = W1[:, i]
                d = Hinv1[i, i]
                if prune_n != 0 and i % prune_m == 0:
                    tmp = W1[:, i:(i + prune_m)] ** 2 / (torch.diag(Hinv1)[i:(i + prune_m)].reshape((1, -1))) ** 2
                    mask1.scatter_(1, i + torch.topk(tmp, prune_n, dim=1, largest=False)[1], True)
                q = w.clone()
                q[mask1[:, i]] = 0
                Q1[:, i] = q
                err1 = (w - q) / d
                W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
                Err1[:, i] = err1
            W[:, i1:i2] = Q1
            W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
        self.layer.weight.data = W.reshape(self.layer.weight.shape).to(self.layer.weight.data.dtype)


@torch.no_grad()
def _sequential(model: nn.Module, layers: nn.ModuleList, samples: torch.Tensor, wrap, prune_layer) -> None:
    """The papers' loop: per layer, one pass over the samples with hooks, prune, a second pass for the outputs."""
    inps, outs, args, kwargs = calibration_inputs(model, layers, samples)
    for layer in layers:
        subset = find_layers(layer)
        wrapped = {name: wrap(subset[name]) for name in subset}

        def add_batch(name):
            def tmp(_, inp, out):
                wrapped[name].add_batch(inp[0].data, out.data)
            return tmp

        handles = [subset[name].register_forward_hook(add_batch(name)) for name in wrapped]
        for j in range(len(samples)):
            outs[j] = layer(inps[j].unsqueeze(0), *args, **kwargs)[0]
        for h in handles:
            h.remove()
        for name in subset:
            prune_layer(subset[name], wrapped[name])
        for j in range(len(samples)):
            outs[j] = layer(inps[j].unsqueeze(0), *args, **kwargs)[0]
        inps, outs = outs, inps


def prune_wanda(model: nn.Module, layers: nn.ModuleList, samples: torch.Tensor, sparsity: float,
                prune_n: int = 0, prune_m: int = 0) -> None:
    """Wanda on every Linear of `layers` (per output row; or n:m), calibrated on `samples` (token ids)."""
    def prune_layer(linear, wrapped):
        W_metric = torch.abs(linear.weight.data) * torch.sqrt(wrapped.scaler_row.reshape((1, -1)))
        W_mask = torch.zeros_like(W_metric) == 1
        if prune_n != 0:
            for ii in range(W_metric.shape[1]):
                if ii % prune_m == 0:
                    tmp = W_metric[:, ii:(ii + prune_m)].float()
                    W_mask.scatter_(1, ii + torch.topk(tmp, prune_n, dim=1, largest=False)[1], True)
        else:
            sort_res = torch.sort(W_metric, dim=-1, stable=True)
            indices = sort_res[1][:, :int(W_metric.shape[1] * sparsity)]
            W_mask.scatter_(1, indices, True)
        linear.weight.data[W_mask] = 0

    _sequential(model, layers, samples, WrappedGPT, prune_layer)


def prune_sparsegpt(model: nn.Module, layers: nn.ModuleList, samples: torch.Tensor, sparsity: float,
                    prune_n: int = 0, prune_m: int = 0, blocksize: int = 128, percdamp: float = 0.01) -> None:
    """SparseGPT on every Linear of `layers`, calibrated on `samples` (token ids)."""
    def prune_layer(linear, gpt):
        gpt.fasterprune(sparsity, prune_n=prune_n, prune_m=prune_m, percdamp=percdamp, blocksize=blocksize)

    _sequential(model, layers, samples, SparseGPT, prune_layer)
