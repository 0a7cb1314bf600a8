"""SparseGPT (Frantar & Alistarh 2023): one-shot pruning with optimal-brain-surgeon weight updates."""

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from prunelab.errors import ConfigError
from prunelab.pruning.allocation import apportion
from prunelab.pruning.calibration import Calibration, input_matrix
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.masks import Masks, apply_masks
from prunelab.pruning.patterns import NM, Block, from_reduction_view, reduction_view
from prunelab.pruning.pruner import UnstructuredPruner
from prunelab.pruning.select import Scope, keep_top
from prunelab.pruning.sequential import walk


def hessian_sums(sums: dict):
    """A `take` that adds X^T X of each layer input (`input_matrix`, float) and its row count to `sums[name]`."""
    def take(name, layer, x):
        x = input_matrix(layer, x).float()
        total, rows = sums.get(name, (0.0, 0))
        sums[name] = (total + x.T @ x, rows + len(x))
    return take


def inverse_cholesky(h: torch.Tensor, dampening: float) -> torch.Tensor:
    """The upper Cholesky factor of (H + damp I)^-1, damp = `dampening` * mean(diag H); dead inputs get H_ii = 1."""
    h = h.clone()
    diag = torch.arange(len(h), device=h.device)
    h[diag, diag] = torch.where(h.diagonal() == 0, 1.0, h.diagonal())
    h[diag, diag] += dampening * h.diagonal().mean()
    return torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)


def block_quotas(alive: torch.Tensor, n_prune: int, block_size: int) -> list[int]:
    """Weights to prune in each column block: its dead ones plus a share of the rest in proportion to its live ones."""
    live = [int(b.sum()) for b in alive.split(block_size, dim=1)]
    dead = [b.numel() - k for b, k in zip(alive.split(block_size, dim=1), live)]
    rest = max(n_prune - sum(dead), 0)
    share = apportion({i: rest * k / max(sum(live), 1) for i, k in enumerate(live)}, rest)
    return [d + share[i] for i, d in enumerate(dead)]


@torch.no_grad()
def obs_prune(w: torch.Tensor, hinv: torch.Tensor, alive: torch.Tensor, n_prune: int, nm: NM | None,
              block_size: int, dead: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SparseGPT's Algorithm 1 on a (rows, columns) weight: the pruned, updated weight and its mask.

    Columns go in blocks of `block_size`; the mask of a block is chosen when the block starts (the
    lowest w^2 / [H^-1]_cc^2 of the block, its quota from `block_quotas`), or for n:m every m columns
    (m - n lowest per row). Each pruned column's error is spread over the later columns of the block at
    once and over later blocks lazily. Weights not `alive` are pruned first; pruned weights are exactly 0.
    """
    w, keep = w.clone().float(), alive.clone()
    quotas = block_quotas(alive, n_prune, block_size)
    for b, i1 in enumerate(range(0, w.shape[1], block_size)):
        i2 = min(i1 + block_size, w.shape[1])
        w1, h1 = w[:, i1:i2].clone(), hinv[i1:i2, i1:i2]
        err = torch.zeros_like(w1)
        d = h1.diagonal()
        scale = d.masked_fill(dead[i1:i2], float("inf"))  # dead columns: saliency (w / inf)^2 = 0
        if nm is None:
            saliency = (w1 / scale).pow(2).masked_fill(~alive[:, i1:i2], float("-inf"))
            keep[:, i1:i2] = keep_top(saliency, quotas[b])
        for i in range(i2 - i1):
            if nm is not None and i % nm.m == 0:
                group = (w1[:, i:i + nm.m] / scale[i:i + nm.m]).pow(2).masked_fill(~alive[:, i1 + i:i1 + i + nm.m], -1.0)
                low = group.topk(nm.m - nm.n, dim=1, largest=False).indices
                keep[:, i1 + i:i1 + i + nm.m] &= ~torch.zeros_like(group, dtype=torch.bool).scatter_(1, low, True)
            q = w1[:, i] * keep[:, i1 + i]
            err[:, i] = (w1[:, i] - q) / d[i]
            w1[:, i:] -= err[:, i : i + 1] @ h1[i : i + 1, i:]
            w1[:, i] = q
        w[:, i1:i2] = w1
        w[:, i2:] -= err @ hinv[i1:i2, i2:]
    return w * keep, keep


class SparseGPT(UnstructuredPruner):
    """Prunes layer by layer in module order, each with the OBS update of `obs_prune` on inputs from `calibration`.

    Every layer's Hessian comes from the model with the layers before it already pruned (as in the
    paper). The weights a layer loses come from `scope` (layer: the target in every layer as the
    paper; erk and row: their layer counts; global and lamp: the counts their ranking of |w| gives).
    `pattern` is unstructured or "n:m"; `block_size` columns are masked at a time; `dampening` is the
    fraction of mean(diag H) added to H's diagonal. Biases and excluded layers are left as they are. With
    `owl`, each layer loses its OWL share (see `UnstructuredPruner.sparsities`), from the model before pruning.
    """

    def __init__(
        self,
        calibration: Calibration,
        scope: Scope = "layer",
        exclude: Sequence[str] = (),
        exclude_output: bool = True,
        layer_rates: Mapping[str, float] | None = None,
        pattern: str = "unstructured",
        block_size: int = 128,
        dampening: float = 0.01,
        owl: Callable | None = None,
    ):
        super().__init__(None, scope, exclude, exclude_output, layer_rates=layer_rates, pattern=pattern, owl=owl)
        nm = self.pattern if isinstance(self.pattern, NM) else None
        if isinstance(self.pattern, Block):
            raise ConfigError("pruning.pattern", "SparseGPT chooses weights column by column, not in blocks",
                              "use pattern unstructured or n:m")
        if block_size < 1 or (nm and block_size % nm.m):
            raise ConfigError("pruning.block_size", f"{block_size} is not a positive multiple of the group size",
                              "use e.g. 128")
        if not dampening > 0:
            raise ConfigError("pruning.dampening", f"must be > 0, got {dampening}", "use e.g. 0.01")
        self.calibration, self.block_size, self.dampening, self.nm = calibration, block_size, dampening, nm

    def prune(self, model: nn.Module, masks: Masks, target: float, ctx: ScoreContext) -> Masks:
        """New masks at `target` (never reviving a weight); the model's weights are pruned and updated.

        Layer after layer (`prunelab.pruning.sequential.walk`): each layer's H = X X^T / n from the inputs that
        the already pruned layers before it produce (a causal LM: decoder layer by decoder layer, as the paper).
        """
        params = self.parameters(model)
        apply_masks([params[n] for n in masks], list(masks.values()))
        counts = self._counts(masks, target, params, self.sparsities(model, params, masks, target, ctx))
        batches = self.calibration.inputs(ctx, next(iter(params.values())).device)
        sums, out = {}, {}

        def prune(names):
            for name in names:
                p = params[name]
                total, rows = sums.pop(name)
                h = total / rows
                w, keep = obs_prune(_matrix(p), inverse_cholesky(h, self.dampening), _matrix(masks[name]).to(p.device),
                                    counts[name], self.nm, self.block_size, h.diagonal() == 0)
                with torch.no_grad():
                    p.copy_(from_reduction_view(w.view(reduction_view(p).shape), p.shape))
                out[name] = from_reduction_view(keep.view(reduction_view(p).shape), p.shape).to(masks[name].device)

        walk(model, {n: params[n] for n in masks}, batches, hessian_sums(sums), prune, self.calibration.device)
        return {n: out[n] for n in masks}

    def _counts(self, masks: Masks, target: float, params, sparsities: Mapping[str, float]) -> dict[str, int]:
        if self.nm is not None:
            return {n: 0 for n in masks}  # n:m fixes each group's count
        chosen = self.select_at({n: params[n].detach().abs() for n in masks}, masks, target, sparsities)
        return {n: int((~m).sum()) for n, m in chosen.items()}


def _matrix(t: torch.Tensor) -> torch.Tensor:
    """`t` as (rows, columns), columns in reduction-view order (kernel position, input channel)."""
    return reduction_view(t).reshape(t.shape[0], -1)
