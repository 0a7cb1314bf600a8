"""Calibration for activation-aware pruning: unlabelled training samples and the inputs each layer sees."""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from prunelab.errors import ConfigError
from prunelab.pruning.criteria import ScoreContext


class Calibration:
    """`num_samples` training inputs (labels dropped), drawn uniformly with `seed`, in batches of `batch_size`.

    The draw is the data's own where it has one (`ScoreContext.calibration`: a language model's windows at
    random positions of the training tokens, as the papers draw them); else one pass over the training batches
    keeping the samples with the smallest seeded random keys, so it is uniform over the training split at the
    cost of reading it once (no forward passes). `device`: where the decoder layers of a causal LM are pruned one
    at a time by the block-sequential methods (`prunelab.pruning.sequential`); null: where the model is.
    """

    def __init__(self, num_samples: int = 128, batch_size: int = 64, seed: int = 0, device: str | None = None):
        for key, value in (("num_samples", num_samples), ("batch_size", batch_size)):
            if value < 1:
                raise ConfigError(f"pruning.calibration.{key}", f"must be >= 1, got {value}", "use e.g. 128")
        try:
            self.device = None if device is None else torch.device(device)
        except RuntimeError:
            raise ConfigError("pruning.calibration.device", f"{device!r} is not a torch device",
                              "use null (where the model is), cpu or cuda") from None
        self.num_samples, self.batch_size, self.seed = num_samples, batch_size, seed

    def inputs(self, ctx: ScoreContext, device: torch.device) -> list[torch.Tensor]:
        """The calibration inputs on `device`, in batches."""
        if ctx.calibration is not None:
            return [b.to(device) for b in ctx.calibration(self.num_samples, self.seed).split(self.batch_size)]
        generator = torch.Generator().manual_seed(self.seed)
        kept, keys = None, torch.empty(0)
        for x in ctx.inputs():
            x = x if kept is None else torch.cat([kept, x])
            keys = torch.cat([keys, torch.rand(len(x) - len(keys), generator=generator)])
            order = keys.argsort()[: self.num_samples]
            kept, keys = x[order], keys[order]
        if kept is None:
            raise ConfigError("pruning.calibration", "the training split yielded no batches", "give it data")
        return [b.to(device) for b in kept.split(self.batch_size)]


def _patches(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(N, C, K, L) zero-padded input patches of a plain Conv2d; a ConfigError for other layers."""
    if not (isinstance(layer, nn.Conv2d) and layer.groups == 1 and layer.padding_mode == "zeros"
            and not isinstance(layer.padding, str)):
        raise ConfigError("pruning", f"activation-aware pruning supports Linear and plain Conv2d layers, not {layer}",
                          "exclude the layer with pruning.exclude")
    cols = F.unfold(x, layer.kernel_size, layer.dilation, layer.padding, layer.stride)  # N, C*K, L
    return cols.view(len(x), layer.in_channels, -1, cols.shape[-1])


def input_matrix(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What `layer`'s weight multiplies, as (rows, features) in the weight's reduction-view column order.

    Linear: the input's last dimension. Conv2d: the unfolded zero-padded input patches, columns ordered
    (kernel position, input channel) like `patterns.reduction_view`. Other layers raise a ConfigError.
    """
    if isinstance(layer, nn.Linear):
        return x.reshape(-1, layer.in_features)
    cols = _patches(layer, x)
    return cols.permute(0, 3, 2, 1).reshape(-1, cols.shape[1] * cols.shape[2])


def squared_sums(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The column sums of `input_matrix(layer, x)` squared, without forming the permuted matrix."""
    if isinstance(layer, nn.Linear):
        return x.reshape(-1, layer.in_features).pow(2).sum(0)
    return _patches(layer, x.pow(2)).sum((0, 3)).T.reshape(-1)  # unfolding commutes with squaring


def capture(model: nn.Module, layers: dict[str, nn.Module], batches: list[torch.Tensor],
            take: Callable[[str, nn.Module, torch.Tensor], None], stop_after: nn.Module | None = None) -> None:
    """Run `batches` through `model` (eval mode, no gradients), calling `take(name, layer, input)` for each layer.

    With `stop_after`, each forward pass ends once that layer has seen its input.
    """
    def hook(name):
        def fn(module, args):
            take(name, module, args[0])
            if module is stop_after:
                raise Stop
        return fn

    handles = [layer.register_forward_pre_hook(hook(name)) for name, layer in layers.items()]
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            run_until_stopped(model, batches)
    finally:
        for h in handles:
            h.remove()
        for module, training in modes:
            module.training = training


class Stop(Exception):
    """Ends a forward pass early, once the layer of interest has seen its input."""


def run_until_stopped(model: nn.Module, batches: list[torch.Tensor]) -> None:
    """`model` on each of `batches`, each pass ending where a hook raises `Stop` (or at its end)."""
    for x in batches:
        try:
            model(x)
        except Stop:
            pass


def owners(model: nn.Module, params: dict[str, nn.Parameter]) -> dict[str, nn.Module]:
    """The layer that owns each weight, by parameter name."""
    return {name: model.get_submodule(name.rpartition(".")[0]) for name in params}
