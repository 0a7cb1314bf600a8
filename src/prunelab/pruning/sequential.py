"""Layer after layer, as SparseGPT and Wanda prune: each group of weights is scored on the calibration inputs
that the already pruned groups before it produce.

On a causal LM (`prunelab.models.decoder`) a group is a decoder layer, walked block-sequentially as the papers'
code does: the calibration samples run once through the embeddings up to the first layer; then for each layer
its Linears see one pass of the layer over the held inputs, are pruned together, and the pruned layer's outputs
become the next layer's inputs. Only one layer's inputs are held, and each layer is moved to `device` while it
is pruned and back after: a model larger than the device stays on the CPU, one layer at a time on the device
(`pruning.calibration.device`). Weights outside the decoder layers (an LM head made prunable) come last, from a pass of the
whole pruned model. Other models: each weight is its own group, from a pass of the model that stops at its layer.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from prunelab.models.causal_lm import CausalLM
from prunelab.models.decoder import decoder
from prunelab.pruning.calibration import Stop, capture, owners, run_until_stopped

Take = Callable[[str, nn.Module, torch.Tensor], None]  # (weight name, its layer, the layer's input)


@dataclass
class Held:
    """A decoder layer's calibration inputs: per batch, the positional and keyword arguments the model passed."""

    args: list[tuple]
    kwargs: list[dict]

    def with_hidden(self, hidden: list[torch.Tensor]) -> "Held":
        """The same arguments with the hidden states (the first positional argument) replaced."""
        return Held([(h, *a[1:]) for h, a in zip(hidden, self.args)], self.kwargs)


def first_inputs(model: nn.Module, layer: nn.Module, batches: list[torch.Tensor], device: torch.device) -> Held:
    """The arguments `layer` (the first decoder layer) receives for each of `batches`, moved to `device`."""
    args, kwargs = [], []

    def hook(module, a, kw):
        args.append(_to(a, device))
        kwargs.append(_to(kw, device))
        raise Stop

    handle = layer.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        run_until_stopped(model, batches)
    finally:
        handle.remove()
    return Held(args, kwargs)


def run_layer(layer: nn.Module, held: Held) -> list[torch.Tensor]:
    """`layer`'s outputs (hidden states) on each batch of `held`."""
    outs = [layer(*a, **kw) for a, kw in zip(held.args, held.kwargs)]
    return [o[0] if isinstance(o, tuple) else o for o in outs]


def walk(model: nn.Module, params: Mapping[str, nn.Parameter], batches: list[torch.Tensor], take: Take,
         prune: Callable[[list[str]], None], device: torch.device | None = None) -> None:
    """Prune `params` group after group (see the module): `take` sees every input of each group's layers,
    then `prune(names)` prunes that group's weights in place, before the next group's inputs are computed.

    `device`: where a causal LM's decoder layers are pruned, one at a time (default: where `batches` are).
    Eval mode and no gradients throughout; the modules' training flags are restored after.
    """
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            rest = _decoder_walk(model, params, batches, take, prune, device) if isinstance(model, CausalLM) else params
            for name, layer in owners(model, dict(rest)).items():
                capture(model, {name: layer}, batches, take, stop_after=layer)
                prune([name])
    finally:
        for module, training in modes:
            module.training = training


def _decoder_walk(model: CausalLM, params: Mapping[str, nn.Parameter], batches: list[torch.Tensor], take: Take,
                  prune: Callable[[list[str]], None], device: torch.device | None) -> dict[str, nn.Parameter]:
    """The block-sequential walk over the decoder layers; returns the weights outside them."""
    layers = decoder(model).layers
    device = device or batches[0].device
    held = first_inputs(model, layers[0], batches, device)
    names = {id(mod): name for name, mod in model.named_modules()}
    rest = dict(params)
    for layer in layers:
        prefix = names[id(layer)] + "."
        group = [n for n in params if n.startswith(prefix)]
        home = next(layer.parameters()).device
        layer.to(device)
        if group:
            hooks = [owner.register_forward_pre_hook(_taking(take, n)) for n, owner in
                     owners(model, {n: params[n] for n in group}).items()]
            try:
                run_layer(layer, held)
            finally:
                for h in hooks:
                    h.remove()
            prune(group)
        held = held.with_hidden(run_layer(layer, held))
        layer.to(home)
        for n in group:
            rest.pop(n)
    return rest


def _taking(take: Take, name: str):
    def hook(module, args):
        take(name, module, args[0])
    return hook


def _to(obj, device: torch.device):
    """Tensors in `obj` (nested tuples, lists, dicts) moved to `device`."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, (tuple, list)):
        return type(obj)(_to(o, device) for o in obj)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    return obj
