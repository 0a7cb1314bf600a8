"""Depth pruning of causal LMs: whole decoder layers removed, chosen by Block Influence (ShortGPT, Men et al.
2024), angular distance (Gromov et al. 2024) or at random."""

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from prunelab.errors import ConfigError
from prunelab.models.causal_lm import CausalLM
from prunelab.models.decoder import decoder, linear_weights
from prunelab.pruning.calibration import Calibration
from prunelab.pruning.contract import Pruner
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.masks import Masks

IMPORTANCES = ("block_influence", "angular", "random")
_DENSE_INDEX = "prunelab_dense_index"  # a decoder layer's index in the dense model


@torch.no_grad()
def hidden_states(model: CausalLM, ids: torch.Tensor) -> list[torch.Tensor]:
    """The L + 1 hidden states of `ids` as (tokens, hidden): [i] is decoder layer i's input, [i + 1] its output.

    Read by hooks on the decoder layers rather than from `output_hidden_states`: transformers gives the last
    hidden state of LLaMA after the final norm, not the last layer's output."""
    layers = decoder(model).layers
    states: list[torch.Tensor] = []

    def take_input(module, args, kwargs):
        if not states:
            states.append(args[0] if args else kwargs["hidden_states"])

    def take_output(module, args, output):
        states.append(output[0] if isinstance(output, tuple) else output)

    handles = [layers[0].register_forward_pre_hook(take_input, with_kwargs=True)]
    handles += [layer.register_forward_hook(take_output) for layer in layers]
    try:
        model(ids)
    finally:
        for h in handles:
            h.remove()
    return [s.reshape(-1, s.shape[-1]).float() for s in states]


def block_influence(batches: list[list[torch.Tensor]]) -> torch.Tensor:
    """Per layer i, 1 - the mean over tokens of cos(x_i, x_{i+1}) (ShortGPT's BI); `batches` of `hidden_states`."""
    return 1 - _token_mean(batches, 1, lambda cos: cos)


def angular_distances(batches: list[list[torch.Tensor]], n: int) -> torch.Tensor:
    """Per first layer l of a block of `n`, the mean over tokens of arccos(cos(x_l, x_{l+n})) / pi."""
    return _token_mean(batches, n, lambda cos: torch.arccos(cos.clamp(-1, 1)) / torch.pi)


def _token_mean(batches: list[list[torch.Tensor]], gap: int, f) -> torch.Tensor:
    total, tokens = 0, 0
    for states in batches:
        cos = torch.stack([F.cosine_similarity(states[i], states[i + gap], dim=-1)
                           for i in range(len(states) - gap)])
        total, tokens = total + f(cos).sum(1), tokens + cos.shape[1]
    return total / tokens


def remove_layers(model: CausalLM, positions: list[int]) -> None:
    """Remove the decoder layers at `positions` (current indices) and renumber the kept ones' `layer_idx`, the
    config's layer count and `layer_types`."""
    layers, config = decoder(model).layers, model.lm.config
    gone = set(positions)
    kept = [i for i in range(len(layers)) if i not in gone]
    for i in sorted(gone, reverse=True):
        del layers[i]  # ModuleList renames the layers after it
    for j, layer in enumerate(layers):
        for m in layer.modules():
            if hasattr(m, "layer_idx"):
                m.layer_idx = j
    if getattr(config, "layer_types", None) is not None:
        config.layer_types = [config.layer_types[i] for i in kept]
    config.num_hidden_layers = len(layers)  # GPT-2's config maps it to n_layer


class DepthPruner(Pruner):
    """Removes whole decoder layers of a causal LM. `target`: the fraction of the dense model's decoder-layer
    parameters removed (embeddings, final norm and LM head are kept), attained as round(target * layers)
    layers of equal size; a warning says the attained fraction when it differs.

    `importance`: block_influence (the n layers of lowest BI), angular (the contiguous n layers whose input and
    output are closest in angle) or random (drawn with the run's generator); scored on `calibration`'s
    samples in one forward of the model as it is."""

    def __init__(self, importance: str = "block_influence", calibration: Calibration | None = None):
        if importance not in IMPORTANCES:
            raise ConfigError("pruning.importance", f"unknown {importance!r}", f"use one of {list(IMPORTANCES)}")
        self.importance, self.calibration = importance, calibration or Calibration()
        self.removed: list[int] = []  # dense indices of the removed layers, over all stages
        self._dense_layers = 0
        self._warned = False

    def parameters(self, model: nn.Module) -> dict[str, nn.Parameter]:
        """Every parameter (removal takes whole layers); a ConfigError unless `model` is a causal LM."""
        if not isinstance(model, CausalLM):
            raise ConfigError("pruning", f"depth pruning removes a causal LM's decoder layers; "
                              f"{type(model).__name__} is not one",
                              "use a causal LM (e.g. model=llama_tiny), or for a CNN pruning=l1_filter")
        decoder(model)
        return dict(model.named_parameters())

    def check(self, model: nn.Module, targets: list[float]) -> None:
        """A ConfigError for a target that would remove every decoder layer."""
        self._dense_indices(decoder(model).layers)
        for target in targets:
            self._count(target)

    def weights(self, model: nn.Module) -> dict[str, nn.Parameter]:
        """The decoder layers' Linear weights."""
        return linear_weights(model)

    def prune(self, model: nn.Module, masks: Masks, target: float, ctx: ScoreContext) -> Masks:
        """Remove layers until round(target * dense layers) of the dense model's are gone; no masks."""
        layers = decoder(model).layers
        dense = self._dense_indices(layers)
        n = self._count(target)
        k = n - (self._dense_layers - len(layers))
        if k > 0:
            positions = self._choose(model, k, ctx)
            self.removed = sorted(set(range(self._dense_layers)) - set(dense) | {dense[p] for p in positions})
            remove_layers(model, positions)
        model.zero_grad(set_to_none=True)
        return {}

    def removal(self) -> dict:
        """The dense indices of the removed layers; {} when none are."""
        return {"removed": list(self.removed)} if self.removed else {}

    def replay(self, model: nn.Module, removal: dict, example) -> None:
        """Remove from the dense `model` the layers `removal` (from `removal()`) names."""
        self._dense_indices(decoder(model).layers)
        remove_layers(model, removal["removed"])
        self.removed = list(removal["removed"])

    def _dense_indices(self, layers: nn.ModuleList) -> list[int]:
        """Each layer's dense index, tagging the layers of a dense model (every stage of a one-shot schedule)."""
        if not all(hasattr(layer, _DENSE_INDEX) for layer in layers):
            for i, layer in enumerate(layers):
                setattr(layer, _DENSE_INDEX, i)
            self._dense_layers = len(layers)
        return [getattr(layer, _DENSE_INDEX) for layer in layers]

    def _count(self, target: float) -> int:
        total = self._dense_layers
        n = max(0, round(target * total))
        if n >= total:
            raise ConfigError("schedule.targets", f"{target} would remove all {total} decoder layers",
                              f"use targets below {(total - 0.5) / total:.3g}")
        if n / total != target and not self._warned:
            warnings.warn(f"depth pruning removes whole layers: {n} of {total} is a fraction {n / total:.4g} of the "
                          f"decoder-layer parameters, not {target}", stacklevel=2)
            self._warned = True
        return n

    def _choose(self, model: CausalLM, k: int, ctx: ScoreContext) -> list[int]:
        """The current positions of the `k` layers to remove."""
        count = len(decoder(model).layers)
        if self.importance == "random":
            return sorted(torch.randperm(count, generator=ctx.generator)[:k].tolist())
        device = next(model.parameters()).device
        training = model.training
        model.eval()
        try:
            batches = [hidden_states(model, ids) for ids in self.calibration.inputs(ctx, device)]
        finally:
            model.train(training)
        if self.importance == "block_influence":
            return sorted(block_influence(batches).argsort(stable=True)[:k].tolist())
        first = int(angular_distances(batches, k).argmin())
        return list(range(first, first + k))
