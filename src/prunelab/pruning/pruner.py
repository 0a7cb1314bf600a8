"""The pruner: criterion + selection over a model's prunable weights."""

from fnmatch import fnmatch
from typing import Callable, Mapping, Sequence

from torch import nn

from prunelab.errors import ConfigError
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.masks import Masks, prunable_parameters
from prunelab.pruning.select import SCOPES, select


class UnstructuredPruner:
    """Prunes individual weights: score them with `criterion`, keep the best per `scope`."""

    def __init__(
        self,
        criterion: Callable,
        scope: str = "global",
        exclude: Sequence[str] = (),
        exclude_output: bool = True,
        layer_rates: Mapping[str, float] | None = None,
    ):
        if scope not in SCOPES:
            raise ConfigError("pruning.scope", f"unknown scope {scope!r}", f"use one of {list(SCOPES)}")
        self.criterion, self.scope = criterion, scope
        self.exclude, self.exclude_output = tuple(exclude), exclude_output
        self.layer_rates = dict(layer_rates or {})
        check_layer_rates(self.layer_rates, scope)

    def parameters(self, model: nn.Module) -> dict[str, nn.Parameter]:
        """The weights this pruner may prune; a ConfigError when exclusions leave none."""
        params = prunable_parameters(model, self.exclude, self.exclude_output)
        if not params:
            raise ConfigError(
                "pruning.exclude",
                f"no prunable parameters left after excluding {list(self.exclude)}"
                f" (exclude_output={self.exclude_output})",
                "exclude fewer layers, or set pruning.exclude_output=false for a one-layer model",
            )
        unmatched = [p for p in self.layer_rates if not any(fnmatch(n, p) for n in params)]
        if unmatched:
            raise ConfigError("pruning.layer_rates", f"{unmatched} match no prunable weight of {list(params)}",
                              "use fnmatch patterns over those names")
        return params

    def prune(self, model: nn.Module, masks: Masks, target: float, ctx: ScoreContext) -> Masks:
        """New masks at sparsity `target`, never reviving a pruned weight."""
        params = self.parameters(model)
        return select(self.criterion(model, params, ctx), masks, target, self.scope, self.layer_rates)


def check_layer_rates(rates: Mapping[str, float], scope: str) -> None:
    """Per-layer rates need layer scope and positive values."""
    if rates and scope != "layer":
        raise ConfigError("pruning.layer_rates", f"need pruning.scope=layer, got {scope}", "set pruning.scope=layer")
    bad = {p: r for p, r in rates.items() if not r > 0}
    if bad:
        raise ConfigError("pruning.layer_rates", f"rates must be > 0, got {bad}", "e.g. {'5.weight': 0.47}")
