"""Width pruning of causal LMs: attention head groups and MLP channels removed from every decoder layer,
scored by first-order Taylor (LLM-Pruner, Ma et al. 2023), the L2 norm of the group, or at random.

The surgery is `prunelab.models.width`'s; this module scores the units and decides how many go where.
"""

import warnings

import torch
from torch import nn

from prunelab.errors import ConfigError
from prunelab.models import width
from prunelab.models.causal_lm import CausalLM
from prunelab.models.decoder import decoder, linear_weights
from prunelab.pruning.contract import Pruner
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.gradient import scoring_mode, summed_gradients
from prunelab.pruning.masks import Masks

IMPORTANCES = ("taylor", "l2", "random")
SCOPES = ("uniform", "global")
_DENSE = "prunelab_dense_units"  # a decoder layer's kept units, as indices of the dense layer's, per kind


def unit_scores(slices: list[width.Slice], count: int, element: dict) -> torch.Tensor:
    """Per unit, the sum over every parameter element it owns of `element[param]` (a tensor of its shape)."""
    return sum(width.unit_view(s, element[p], count, bias).sum(1) for s in slices for p, bias in width.tensors(s))


def uniform_plan(dense: list[dict], cost: list[dict], params: list[int], target: float) -> list[dict]:
    """Per layer, how many units of each kind leave the dense layer so that a fraction `target` of its
    `params` goes: round(target * groups) attention groups, then the MLP channels that make up the rest.
    `dense`: each layer's unit counts; `cost`: the parameters one unit of each kind holds."""
    plan = []
    for units, each, total in zip(dense, cost, params):
        heads = round(target * units["attention"])
        channels = round((target * total - heads * each["attention"]) / each["mlp"])
        for kind, n in (("attention", heads), ("mlp", channels)):
            if n >= units[kind]:
                raise ConfigError("schedule.targets", f"{target} leaves no {_NAMES[kind]} in a decoder layer of "
                                  f"{units[kind]}", f"use targets below {_most(dense, cost, params):.3g}")
        plan.append({"attention": max(heads, 0), "mlp": max(channels, 0)})
    return plan


_NAMES = {"attention": "attention head group", "mlp": "MLP channel"}


def _most(dense: list[dict], cost: list[dict], params: list[int]) -> float:
    """The largest fraction of the layers' parameters removable with one unit of each kind left per layer."""
    return min(sum((u[k] - 1) * c[k] for k in u) / p for u, c, p in zip(dense, cost, params))


def global_choice(scores: list[dict], cost: list[dict], goal: dict, removed: dict) -> list[dict]:
    """Per layer and kind, the current positions of the units to remove: the lowest scores over all layers until
    `goal[kind]` (attention: groups; mlp: parameters) is met counting what is already `removed`, one unit of
    each kind kept in every layer."""
    chosen = [{k: [] for k in s} for s in scores]
    for kind in ("attention", "mlp"):
        order = sorted((float(v), layer, pos) for layer, s in enumerate(scores) for pos, v in enumerate(s[kind]))
        left = [len(s[kind]) for s in scores]
        done = removed[kind]
        for _, layer, pos in order:
            step = 1 if kind == "attention" else cost[layer][kind]
            if done + step / 2 > goal[kind]:
                break
            if left[layer] > 1:
                chosen[layer][kind].append(pos)
                left[layer] -= 1
                done += step
        if kind == "attention":  # the channels make up the parameters the groups did not take
            goal["mlp"] -= sum(len(c["attention"]) * cost[i]["attention"] for i, c in enumerate(chosen))
    return [{k: sorted(v) for k, v in c.items()} for c in chosen]


class WidthPruner(Pruner):
    """Removes attention head groups (a key-value head with its query heads) and MLP channels from every decoder
    layer of a causal LM, with every projection they feed or read. `target`: the fraction of the dense model's
    decoder-layer parameters removed (embeddings, norms and LM head kept), the same axis as depth pruning.

    `importance`: taylor, LLM-Pruner's element-wise first order |w * sum_b dL/dw| summed over the unit's
    weights, on `num_batches` training batches; l2, the L2 norm of the unit's weights; random, drawn with the
    run's generator. `scope`: uniform, round(target * groups) groups out of every layer (a warning when the
    grouping rounds the ratio) and the MLP channels that bring each layer to the target; global, the groups and
    then the channels of lowest importance over all layers, one of each kept per layer."""

    def __init__(self, importance: str = "taylor", scope: str = "uniform", num_batches: int = 8):
        if importance not in IMPORTANCES:
            raise ConfigError("pruning.importance", f"unknown {importance!r}", f"use one of {list(IMPORTANCES)}")
        if scope not in SCOPES:
            raise ConfigError("pruning.scope", f"unknown {scope!r}", f"use one of {list(SCOPES)}")
        if num_batches < 1:
            raise ConfigError("pruning.num_batches", f"must be >= 1, got {num_batches}", "use e.g. 8")
        self.importance, self.scope, self.num_batches = importance, scope, num_batches
        self.kept: list[dict] = []  # per layer and kind, the dense indices of the kept units (after pruning)
        self._dense: dict = {}
        self._warned = False

    def parameters(self, model: nn.Module) -> dict[str, nn.Parameter]:
        """Every parameter (removal takes whole units); a ConfigError unless `model` is a causal LM of a family
        the surgery knows."""
        if not isinstance(model, CausalLM):
            raise ConfigError("pruning", f"width pruning removes a causal LM's heads and channels; "
                              f"{type(model).__name__} is not one",
                              "use a causal LM (e.g. model=llama_tiny), or for a CNN pruning=l1_filter")
        width.family(model.lm)
        return dict(model.named_parameters())

    def weights(self, model: nn.Module) -> dict[str, nn.Parameter]:
        """The decoder layers' Linear weights."""
        return linear_weights(model)

    def check(self, model: nn.Module, targets: list[float]) -> None:
        """A ConfigError for a target that leaves a layer without a head group or an MLP channel."""
        dense = self._dense_of(model)
        for target in targets:
            if self.scope == "uniform":
                uniform_plan(dense["units"], dense["cost"], dense["params"], target)
            elif target >= (most := _most(dense["units"], dense["cost"], dense["params"])):
                raise ConfigError("schedule.targets", f"{target} leaves no attention head group or MLP channel "
                                  "in some decoder layer", f"use targets below {most:.3g}")

    def prune(self, model: nn.Module, masks: Masks, target: float, ctx: ScoreContext) -> Masks:
        """Remove units until a fraction `target` of the dense decoder layers' parameters is gone; no masks."""
        lm, layers = model.lm, decoder(model).layers
        fam, hd = width.family(lm), width.head_dim(lm)
        dense = self._dense_of(model)
        self.check(model, [target])
        kept = [getattr(layer, _DENSE) for layer in layers]
        scores = self._scores(model, ctx)
        if self.scope == "uniform":
            plan = uniform_plan(dense["units"], dense["cost"], dense["params"], target)
            self._warn_rounding(plan, dense["units"], target)
            remove = [{k: scores[i][k].argsort(stable=True)[: max(0, p[k] - (dense["units"][i][k] - len(kept[i][k])))]
                       .sort().values.tolist() for k in p} for i, p in enumerate(plan)]
        else:
            gone = [{k: dense["units"][i][k] - len(kept[i][k]) for k in width.KINDS} for i in range(len(layers))]
            removed = {"attention": sum(g["attention"] for g in gone),  # groups; mlp: parameters, as the goal
                       "mlp": sum(g[k] * c[k] for g, c in zip(gone, dense["cost"]) for k in width.KINDS)}
            goal = {"attention": round(target * sum(u["attention"] for u in dense["units"])),
                    "mlp": target * sum(dense["params"])}
            remove = global_choice(scores, dense["cost"], goal, removed)
        for layer, gone, before in zip(layers, remove, kept):
            keep = {k: [i for i in range(len(before[k])) if i not in set(gone[k])] for k in width.KINDS}
            width.shrink(layer, fam, hd, keep)
            setattr(layer, _DENSE, {k: [before[k][i] for i in keep[k]] for k in width.KINDS})
        self.kept = [getattr(layer, _DENSE) for layer in layers]
        model.zero_grad(set_to_none=True)
        return {}

    def removal(self) -> dict:
        """Per decoder layer, the dense indices of the kept units of each kind; {} before any pruning."""
        return {"kept": [dict(k) for k in self.kept]} if self.kept else {}

    def replay(self, model: nn.Module, removal: dict, example) -> None:
        """Shrink the dense `model` to the units `removal` (from `removal()`) keeps."""
        self._dense_of(model)
        fam, hd = width.family(model.lm), width.head_dim(model.lm)
        for layer, keep in zip(decoder(model).layers, removal["kept"]):
            width.shrink(layer, fam, hd, keep)
            setattr(layer, _DENSE, keep)
        self.kept = [dict(k) for k in removal["kept"]]

    def _dense_of(self, model: CausalLM) -> dict:
        """The dense model's unit counts, unit costs and parameters per layer, read once (tagging each layer)."""
        layers = decoder(model).layers
        if not all(hasattr(layer, _DENSE) for layer in layers):
            fam, hd = width.family(model.lm), width.head_dim(model.lm)
            units = [width.units(layer, fam, hd) for layer in layers]
            self._dense = {"units": units, "cost": [width.unit_parameters(layer, fam, hd) for layer in layers],
                           "params": [sum(p.numel() for p in layer.parameters()) for layer in layers]}
            for layer, n in zip(layers, units):
                setattr(layer, _DENSE, {k: list(range(n[k])) for k in width.KINDS})
        return self._dense

    def _scores(self, model: CausalLM, ctx: ScoreContext) -> list[dict]:
        """Per layer and kind, one importance per current unit."""
        lm, layers = model.lm, decoder(model).layers
        fam, hd = width.family(lm), width.head_dim(lm)
        counts = [width.units(layer, fam, hd) for layer in layers]
        if self.importance == "random":
            return [{k: torch.rand(n[k], generator=ctx.generator) for k in width.KINDS} for n in counts]
        slices = [width.couplings(layer, fam) for layer in layers]
        params = [p for c in slices for kind in width.KINDS for s in c[kind] for p, _ in width.tensors(s)]
        if self.importance == "taylor":
            with scoring_mode(model):
                grads = summed_gradients(model, params, ctx, self.num_batches)
            element = {p: (p.detach() * g).abs() for p, g in zip(params, grads)}
        else:
            element = {p: p.detach().square() for p in params}
        scores = [{k: unit_scores(c[k], n[k], element).cpu() for k in width.KINDS} for c, n in zip(slices, counts)]
        if self.importance == "l2":
            scores = [{k: s.sqrt() for k, s in layer.items()} for layer in scores]
        return scores

    def _warn_rounding(self, plan: list[dict], dense: list[dict], target: float) -> None:
        ratios = {p["attention"] / d["attention"] for p, d in zip(plan, dense)}
        if not self._warned and ratios != {target}:
            warnings.warn(f"width pruning removes attention heads in whole key-value groups: a ratio of "
                          f"{', '.join(f'{r:.4g}' for r in sorted(ratios))} of the head groups, not {target}; the MLP "
                          "channels make up the parameters", stacklevel=3)
            self._warned = True
