"""The pruner: criterion + selection over a model's prunable weights."""

from fnmatch import fnmatch
from typing import Annotated, Callable, Mapping, Sequence

import torch
from annotated_types import Ge
from torch import nn

from prunelab import hints
from prunelab.errors import ConfigError
from prunelab.pruning import baselines
from prunelab.pruning.contract import Pruner
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.masks import Masks, apply_masks, prunable_parameters, sparsity
from prunelab.pruning.patterns import NM, Unstructured, parse_pattern
from prunelab.pruning.select import Scope, check_scope

LOCAL_SCOPES = ("layer", "row")  # allocations that set each layer's count from that layer alone
Rounds = Annotated[int, Ge(1)]


def round_targets(start: float, target: float, rounds: int) -> list[float]:
    """Sparsity after each of `rounds` rounds: the density falls geometrically from 1-start to 1-target.

    From a dense start this is the exponential schedule of Tanaka et al. 2020, density (1-target)^(r/rounds).
    """
    d0, d1 = 1.0 - start, 1.0 - target
    if d0 <= 0.0:  # nothing left to prune
        return [target] * rounds
    return [1.0 - d0 * (d1 / d0) ** (r / rounds) for r in range(1, rounds)] + [target]


def checked_parameters(model: nn.Module, exclude: Sequence[str], exclude_output: bool) -> dict[str, nn.Parameter]:
    """`prunable_parameters`, or a ConfigError when the exclusions leave none."""
    params = prunable_parameters(model, exclude, exclude_output)
    if not params:
        raise ConfigError(
            "pruning.exclude",
            f"no prunable parameters left after excluding {list(exclude)} (exclude_output={exclude_output})",
            "exclude fewer layers, or set pruning.exclude_output=false for a one-layer model",
        )
    return params


class UnstructuredPruner(Pruner):
    """Prunes individual weights: score them with `criterion`, keep the best per `pattern` and `scope`.

    `scope` spreads the target over layers (see `select`: global, layer, row, erk, lamp). `pattern` is
    "unstructured", "n:m" (see `patterns.NM`; scope and rates do not apply, and erk or rates are an error)
    or "block" (`block_shape` [h, w] blocks; see `patterns.Block`). `rounds` > 1 prunes in that many score -> select rounds on the exponential schedule of
    `round_targets`, each scoring the model masked by the round before. `baseline` turns any
    criterion into a sanity baseline (see `prunelab.pruning.baselines`): null, invert, shuffle, reinit.
    `owl` (a `prunelab.pruning.owl.OWL`; the `owl` config group) gives each parameter its own sparsity
    (`sparsities`): unstructured, scope layer or row, no layer_rates.
    """

    def __init__(
        self,
        criterion: Callable,
        scope: Scope = "global",
        exclude: Sequence[str] = (),
        exclude_output: bool = True,
        rounds: Rounds = 1,
        baseline: str | None = None,
        layer_rates: Mapping[str, float] | None = None,
        pattern: str = "unstructured",
        block_shape: Sequence[int] = (4, 4),
        owl: Callable | None = None,
    ):
        check_scope(scope, Scope)
        hints.check("pruning.rounds", rounds, Rounds)
        if baseline not in baselines.BASELINES:
            raise ConfigError("pruning.baseline", f"unknown baseline {baseline!r}",
                              f"use one of {[b or 'null' for b in baselines.BASELINES]}")
        self.criterion, self.scope = criterion, scope
        self.exclude, self.exclude_output = tuple(exclude), exclude_output
        self.rounds, self.baseline = rounds, baseline
        self.layer_rates = dict(layer_rates or {})
        check_layer_rates(self.layer_rates, scope)
        self.pattern = parse_pattern(pattern, block_shape)
        check_pattern(self.pattern, scope, self.layer_rates)
        check_owl(owl, self.pattern, scope, self.layer_rates)
        self.owl = owl

    def parameters(self, model: nn.Module) -> dict[str, nn.Parameter]:
        """The weights this pruner may prune; a ConfigError when exclusions leave none."""
        params = checked_parameters(model, self.exclude, self.exclude_output)
        unmatched = [p for p in self.layer_rates if not any(fnmatch(n, p) for n in params)]
        if unmatched:
            raise ConfigError("pruning.layer_rates", f"{unmatched} match no prunable weight of {list(params)}",
                              "use fnmatch patterns over those names")
        misfits = self.pattern.misfits({n: p.shape for n, p in params.items()})
        if misfits:
            raise ConfigError("pruning.pattern", f"the shapes of {misfits} cannot hold the pattern (see the docs"
                              " of prunelab.pruning.patterns)", f"leave them dense: pruning.exclude={misfits}")
        return params

    def prune(self, model: nn.Module, masks: Masks, target: float, ctx: ScoreContext) -> Masks:
        """New masks at sparsity `target`, never reviving a pruned weight; the model's weights are masked.

        Apart from being masked, the weights are left as they were (unless `baseline` is reinit).
        """
        params = self.parameters(model)
        weights = [params[n] for n in masks]
        before, start = masks, sparsity(masks)
        for i, step in enumerate(round_targets(start, target, self.rounds)):
            if i or start:  # dense masks zero nothing (ResNet-50's bool-mask multiply: ~0.09 s)
                apply_masks(weights, list(masks.values()))
            masks = self.select_round(model, params, masks, step, ctx)
        after = baselines.AFTER_SELECTION.get(self.baseline)
        if after is not None:
            masks = after(model, before, masks, ctx.generator)
        apply_masks(weights, list(masks.values()))
        return masks


    def select_round(self, model: nn.Module, params: dict[str, nn.Parameter], masks: Masks, target: float,
                     ctx: ScoreContext) -> Masks:
        """One score -> select round: masks at `target` from the criterion's scores of the model as it is."""
        scores = self.scores(model, params, masks, ctx)
        return self.select_at(scores, masks, target, self.sparsities(model, params, masks, target, ctx))

    def sparsities(self, model: nn.Module, params: dict[str, nn.Parameter], masks: Masks, target: float,
                   ctx: ScoreContext) -> dict[str, float]:
        """The sparsity of each parameter `masks` cover at overall `target`: OWL's (`owl`), else `target`."""
        if self.owl is None:
            return {name: target for name in masks}
        return self.owl(model, {n: params[n] for n in masks}, target, ctx)

    def select_at(self, scores: dict, masks: Masks, target: float, sparsities: Mapping[str, float]) -> Masks:
        """Masks from `scores`: each parameter at `sparsities[name]` under a local scope (layer, row; n:m fixes its
        own), else the scope's allocation of `target` over all of them."""
        if self.scope not in LOCAL_SCOPES or isinstance(self.pattern, NM):
            return self.pattern.select(scores, masks, target, self.scope, self.layer_rates)
        return {n: self.pattern.select({n: scores[n]}, {n: masks[n]}, sparsities[n], self.scope, self.layer_rates)[n]
                for n in masks}

    def scores(self, model: nn.Module, params: dict[str, nn.Parameter], masks: Masks, ctx: ScoreContext) -> dict:
        """The criterion's checked scores of the weights `masks` cover (inverted by the invert baseline)."""
        scores = self.criterion(model, params, ctx)
        check_scores(self.criterion, scores, {n: params[n] for n in masks})
        return baselines.invert(scores) if self.baseline == "invert" else scores


def check_scores(criterion: Callable, scores, params: Mapping[str, nn.Parameter]) -> None:
    """A ConfigError naming the first parameter whose scores from `criterion` are missing, misshapen or NaN."""
    who = getattr(criterion, "__qualname__", type(criterion).__qualname__)
    fix = "return {name: one finite score per weight, shaped like the parameter} for every parameter given"
    if not isinstance(scores, Mapping):
        raise ConfigError("pruning.criterion", f"{who} returned {type(scores).__name__}, not a dict of tensors", fix)
    for name, param in params.items():
        score = scores.get(name)
        if not isinstance(score, torch.Tensor):
            raise ConfigError("pruning.criterion", f"{who} returned no score tensor for {name}", fix)
        if score.shape != param.shape:
            raise ConfigError("pruning.criterion", f"{who} returned scores of shape {list(score.shape)} for {name} "
                              f"of shape {list(param.shape)}", fix)
        if score.sum().isnan() and score.isnan().any():  # NaN reaches the sum; the sum is ~6x faster
            raise ConfigError("pruning.criterion", f"{who} returned NaN scores for {name}", fix)


def check_layer_rates(rates: Mapping[str, float], scope: str) -> None:
    """Per-layer rates need layer scope and positive values."""
    if rates and scope != "layer":
        raise ConfigError("pruning.layer_rates", f"need pruning.scope=layer, got {scope}", "set pruning.scope=layer")
    bad = {p: r for p, r in rates.items() if not r > 0}
    if bad:
        raise ConfigError("pruning.layer_rates", f"rates must be > 0, got {bad}", "e.g. {'5.weight': 0.47}")



def check_pattern(pattern, scope: str, rates: Mapping[str, float]) -> None:
    """N:M fixes every layer's sparsity, so uneven allocations cannot apply."""
    if isinstance(pattern, NM) and (scope == "erk" or rates):
        raise ConfigError("pruning.pattern", f"{pattern.n}:{pattern.m} prunes every layer alike; scope={scope} and"
                          " layer_rates ask for uneven layers", "use scope=global and no layer_rates with n:m")


def check_owl(owl, pattern, scope: str, rates: Mapping[str, float]) -> None:
    """OWL sets every layer's sparsity itself: unstructured weights, a local scope, no layer_rates."""
    if owl is None:
        return
    if not isinstance(pattern, Unstructured):
        raise ConfigError("pruning.owl", "sets each layer's sparsity, which an n:m or block pattern fixes or rounds",
                          "use pruning.pattern=unstructured with owl, or owl=none")
    if scope not in LOCAL_SCOPES:
        raise ConfigError("pruning.owl", f"prunes each layer at its own sparsity, which scope={scope} would "
                          "reallocate", "set pruning.scope=layer (or row)")
    if rates:
        raise ConfigError("pruning.owl", "sets each layer's sparsity, and so do pruning.layer_rates",
                          "give one of them: pruning.layer_rates={} or owl=none")
