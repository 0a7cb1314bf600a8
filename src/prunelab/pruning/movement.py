"""Movement pruning (Sanh et al. 2020), and the accumulated first-order movement scores it is often mistaken for."""

from typing import Callable

import torch
from torch import nn

from prunelab.pruning.contract import Pruner
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.masks import Masks, apply_masks, full_masks
from prunelab.pruning.pruner import checked_parameters
from prunelab.pruning.select import ChannelScope, check_scope, select


def sgd(params) -> torch.optim.Optimizer:
    """The scores' default optimizer: plain SGD, so that S = -lr * sum over steps of W * dL/dW' (the paper's Eq. 4)."""
    return torch.optim.SGD(params, lr=1e-2)


class Movement(Pruner):
    """Movement pruning: learned scores S, the mask the top-k of S, recomputed after every optimizer step.

    The network computes with W' = W * M, M = TopK(S) at the current target (per weight matrix with
    `scope: layer`, as Hugging Face's `TopKBinarizer`; `global` ranks every matrix together). The
    top-k is straight-through: dL/dS = dL/dW' * W, for pruned weights too, and `score_optimizer` (a
    factory of a torch optimizer over the scores, SGD by default; the scores start at zero) trains S
    with it. W gets dL/dW = M * dL/dW' from the run's own optimizer, and a pruned weight keeps its
    value and is updated too (weight decay, momentum): when its score climbs back into the top-k it
    comes back with that value. The model holds W * M between steps, so everything that reads it
    (evaluation, sparsity, checkpoints, export) sees the masked network; the pruner keeps W itself
    and restores it for each optimizer step. The target follows a gradual schedule (schedule=agp, the
    cubic schedule of the paper); the scores carry on from stage to stage.
    """

    needs_gradual = True

    def __init__(self, scope: ChannelScope = "layer", score_optimizer: Callable = sgd, exclude: tuple[str, ...] = (),
                 exclude_output: bool = True):
        check_scope(scope)
        self.scope, self.score_optimizer = scope, score_optimizer
        self.exclude, self.exclude_output = tuple(exclude), exclude_output
        self.target = 0.0
        self.scores: dict[str, torch.Tensor] = {}
        self.weights_kept: dict[str, torch.Tensor] = {}  # W as the optimizer left it, pruned entries included
        self.masks: Masks = {}
        self._optimizer: torch.optim.Optimizer | None = None
        self._optimizer_state: dict | None = None  # from a checkpoint, loaded once the optimizer is built
        self._restored = False  # observe put W back for this step's optimizer update

    def parameters(self, model: nn.Module) -> dict[str, nn.Parameter]:
        """The weights this pruner may prune."""
        return checked_parameters(model, self.exclude, self.exclude_output)

    def prune(self, model: nn.Module, masks: Masks, target: float, ctx: ScoreContext) -> Masks:
        """The top-k of the scores at the new `target`; pruned weights come back with their kept values."""
        self.target = target
        return self._remask(self.parameters(model), masks)

    def observe(self, params: dict[str, nn.Parameter], step: int, steps: int) -> None:
        """Before the optimizer step: step the scores on dL/dS = dL/dW' * W, and give the optimizer W itself."""
        grads = {n: p.grad for n, p in params.items() if p.grad is not None}
        if not grads:
            return
        optimizer = self._optimizer_for(params)
        with torch.no_grad():
            for n, g in grads.items():
                w = self._full(n, params[n])
                self.scores[n].grad = g * w
                params[n].copy_(w)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        self._restored = True

    def stepped(self, params: dict[str, nn.Parameter]) -> None:
        """After the optimizer step: keep W as it left it, pruned entries included."""
        if not self._restored:
            return
        with torch.no_grad():
            for n, p in params.items():
                kept = self.weights_kept.get(n)
                if kept is not None and kept.shape == p.shape and kept.device == p.device:
                    kept.copy_(p)
                else:
                    self.weights_kept[n] = p.detach().clone()
        self._restored = False

    def update(self, params: dict[str, nn.Parameter], masks: Masks, step: int, steps: int, seed: int) -> Masks | None:
        """After every optimizer step: the mask of the scores as they are now."""
        return self._remask(params, masks)

    def state_dict(self) -> dict:
        """The scores, their optimizer, the kept weights, the masks and the target."""
        optimizer = self._optimizer.state_dict() if self._optimizer is not None else self._optimizer_state
        return {"scores": _cpu(self.scores), "weights": _cpu(self.weights_kept), "masks": _cpu(self.masks),
                "target": self.target, "optimizer": optimizer}

    def load_state_dict(self, state: dict) -> None:
        self.scores, self.weights_kept = _cpu(state.get("scores", {})), _cpu(state.get("weights", {}))  # ours to change
        self.masks, self.target = dict(state.get("masks", {})), state.get("target", 0.0)
        self._optimizer, self._optimizer_state = None, state.get("optimizer")

    def _remask(self, params: dict[str, nn.Parameter], masks: Masks) -> Masks:
        """Masks of the top-k scores at `target`, any weight eligible; the model gets W * new mask."""
        scores = {n: self.scores[n].detach().to(params[n].device) if n in self.scores else torch.zeros_like(params[n])
                  for n in masks}
        new = select(scores, full_masks(scores), self.target, self.scope)
        self.masks.update({n: m.to(params[n].device) for n, m in masks.items()})  # the masks the model holds now
        with torch.no_grad():
            for n in masks:
                params[n].copy_(self._full(n, params[n]))
        apply_masks([params[n] for n in new], list(new.values()))
        self.masks = {n: m.to(params[n].device) for n, m in new.items()}
        return new

    def _full(self, name: str, param: torch.Tensor) -> torch.Tensor:
        """W: the model's value where the mask keeps a weight, the kept value where it prunes one."""
        kept, mask = self.weights_kept.get(name), self.masks.get(name)
        if kept is None or mask is None:
            return param.detach()
        return torch.where(mask.to(param.device), param.detach(), kept.to(param.device))

    def _optimizer_for(self, params: dict[str, nn.Parameter]) -> torch.optim.Optimizer:
        if self._optimizer is None:
            self.scores = {n: nn.Parameter(self.scores[n].to(p.device, p.dtype) if n in self.scores
                                           else torch.zeros_like(p)) for n, p in params.items()}
            self._optimizer = self.score_optimizer(list(self.scores.values()))
            if self._optimizer_state is not None:
                self._optimizer.load_state_dict(self._optimizer_state)
                self._optimizer_state = None
        return self._optimizer


class AccumulatedMovement(Pruner):
    """Scores S = -sum over fine-tuning steps of W * dL/dW of the weights as they are, masks that only shrink.

    A gradual first-order criterion in the spirit of movement pruning but not Sanh et al.'s method (that is
    `Movement`): pruned weights are held at zero, so their scores stop changing and nothing revives, and
    the ranking is global by default. Pruning needs steps to score, so it runs on a gradual schedule
    (`needs_gradual`); the scores are part of the checkpoint.
    """

    needs_gradual = True

    def __init__(self, scope: ChannelScope = "global", exclude: tuple[str, ...] = (), exclude_output: bool = True):
        check_scope(scope)
        self.scope, self.exclude, self.exclude_output = scope, tuple(exclude), exclude_output
        self.scores: dict[str, torch.Tensor] = {}

    def parameters(self, model: nn.Module) -> dict[str, nn.Parameter]:
        """The weights this pruner may prune."""
        return checked_parameters(model, self.exclude, self.exclude_output)

    def observe(self, params: dict[str, nn.Parameter], step: int, steps: int) -> None:
        """Add -W * dL/dW of the coming optimizer step to the scores."""
        with torch.no_grad():
            for n, p in params.items():
                if p.grad is not None:
                    self.scores[n] = self.scores.get(n, torch.zeros_like(p)).to(p.device) - p * p.grad

    def prune(self, model: nn.Module, masks: Masks, target: float, ctx: ScoreContext) -> Masks:
        """Masks at sparsity `target` keeping the highest scores; pruned weights stay pruned."""
        params = self.parameters(model)
        scores = {n: self.scores.get(n, torch.zeros_like(params[n])) for n in masks}
        new = select(scores, masks, target, self.scope)
        apply_masks([params[n] for n in new], list(new.values()))
        return new

    def state_dict(self) -> dict:
        """The accumulated scores."""
        return {"scores": {n: s.cpu() for n, s in self.scores.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.scores = dict(state.get("scores", {}))


def _cpu(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Copies on the CPU (the scores change in place, and `.cpu()` of a CPU tensor is the tensor itself)."""
    return {n: t.detach().to("cpu", copy=True) for n, t in tensors.items()}
