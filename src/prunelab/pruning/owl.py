"""OWL (Yin et al. 2024, "Outlier Weighed Layerwise Sparsity"): layers with more activation outliers stay denser.

A layer's outlier ratio D_l is the fraction of its Wanda scores |W_ij| * ||X_j||_2 (all its weights together)
above `m` times their mean. The ratios, min-max normalised to [0, 2 * lamda] and shifted so that their mean
is 1 - target, are the layers' densities (the official code, luuyin/OWL `lib/prune_all.py`:
`all_layer_ratio`, `Lamda`, `Hyper_m`). The mean is weighted by the layers' weights, so layers of unequal sizes
still meet the target exactly; LLaMA's, GPT-2's and OPT's decoder layers are equal, where it is the plain mean.
"""

from collections.abc import Hashable, Mapping

import torch
from torch import nn

from prunelab.errors import ConfigError
from prunelab.models.causal_lm import CausalLM
from prunelab.models.decoder import decoder
from prunelab.pruning.allocation import apportion
from prunelab.pruning.calibration import Calibration
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.wanda import wanda_scores


def outlier_ratio(scores: list[torch.Tensor], m: float) -> float:
    """The fraction of all the values of `scores` (taken together) above `m` times their mean."""
    flat = torch.cat([s.reshape(-1).double() for s in scores])
    return float((flat > flat.mean() * m).sum()) / flat.numel()


def outlier_ratios(scores: Mapping[str, torch.Tensor], groups: Mapping[str, Hashable], m: float) -> dict:
    """`outlier_ratio` of each group's scores: group -> D_l, groups in the order of their first parameter."""
    members: dict = {}
    for name, group in groups.items():
        members.setdefault(group, []).append(scores[name])
    return {group: outlier_ratio(s, m) for group, s in members.items()}


def owl_densities(ratios: Mapping, sizes: Mapping, target: float, lamda: float) -> dict:
    """Each group's density: its ratio min-max normalised to [0, 2 * lamda], shifted so that the mean density,
    weighted by `sizes` (weights per group), is 1 - `target`. Equal ratios: every group at 1 - target."""
    lo, hi = min(ratios.values()), max(ratios.values())
    spread = {g: 0.0 if hi == lo else (r - lo) / (hi - lo) * 2 * lamda for g, r in ratios.items()}
    mean = sum(spread[g] * sizes[g] for g in spread) / sum(sizes[g] for g in spread)
    return {g: s - mean + 1.0 - target for g, s in spread.items()}


def check_densities(densities: Mapping, lamda: float, target: float) -> None:
    """A ConfigError naming pruning.owl.lamda when a density is outside [0, 1]."""
    off = {g: round(d, 4) for g, d in densities.items() if not 0.0 <= d <= 1.0}
    if off:
        raise ConfigError("pruning.owl.lamda", f"{lamda} puts layers at densities {off} (outside [0, 1]) at target "
                          f"{target}", "use a smaller pruning.owl.lamda")


def layer_groups(model: nn.Module, names) -> dict[str, Hashable]:
    """The OWL layer of each parameter: the index of the decoder layer that holds it (a causal LM's,
    `prunelab.models.decoder`), else (no decoder layers, or outside them) the parameter's own name."""
    prefixes = {}
    if isinstance(model, CausalLM):
        layers = {id(layer): i for i, layer in enumerate(decoder(model).layers)}
        prefixes = {f"{n}.": layers[id(mod)] for n, mod in model.named_modules() if id(mod) in layers}
    return {name: next((i for p, i in prefixes.items() if name.startswith(p)), name) for name in names}


class OWL:
    """Per-parameter sparsities at a target: every prunable weight of OWL layer l (see `layer_groups`) at layer
    l's sparsity 1 - density (`owl_densities` of the outlier ratios, `outlier_ratios` with `m`).

    The Wanda scores come from one pass of `calibration`'s samples through the model as it is when pruned (the
    dense model, when pruning once, as in the paper). The sparsities are whole counts per parameter
    (`apportion`) that sum to round(target * weights), so the overall sparsity is the target exactly. A
    ConfigError when `lamda` is outside [0, 0.5], above min(target, 1 - target) at a target, or puts a layer's
    density outside [0, 1].
    """

    def __init__(self, calibration: Calibration, m: float = 5.0, lamda: float = 0.08):
        if not m > 0:
            raise ConfigError("pruning.owl.m", f"must be > 0, got {m}", "use the paper's 5")
        if not 0 <= lamda <= 0.5:
            raise ConfigError("pruning.owl.lamda", f"must be in [0, 0.5] (and at most min(target, 1 - target) at "
                              f"each target), got {lamda}", "use the paper's 0.08")
        self.calibration, self.m, self.lamda = calibration, m, lamda

    def __call__(self, model: nn.Module, params: dict[str, nn.Parameter], target: float,
                 ctx: ScoreContext) -> dict[str, float]:
        bound = min(target, 1.0 - target)
        if self.lamda > bound:
            raise ConfigError("pruning.owl.lamda", f"{self.lamda} is above min(target, 1 - target) = {bound:.4g} "
                              f"at target {target}", f"use pruning.owl.lamda={bound:.4g} or less")
        groups = layer_groups(model, params)
        batches = self.calibration.inputs(ctx, next(iter(params.values())).device)
        ratios = outlier_ratios(wanda_scores(model, params, batches), groups, self.m)
        sizes = {g: 0 for g in ratios}
        for name, group in groups.items():
            sizes[group] += params[name].numel()
        densities = owl_densities(ratios, sizes, target, self.lamda)
        check_densities(densities, self.lamda, target)
        quotas = {n: (1.0 - densities[groups[n]]) * p.numel() for n, p in params.items()}
        total = sum(p.numel() for p in params.values())
        counts = apportion(quotas, round(target * total), {n: p.numel() for n, p in params.items()})
        return {n: counts[n] / params[n].numel() for n in params}
