"""Movement pruning (Sanh et al. 2020): keep the weights that fine-tuning moves away from zero."""

import torch
from torch import nn

from prunelab.pruning.contract import Pruner
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.masks import Masks, apply_masks
from prunelab.pruning.pruner import checked_parameters
from prunelab.pruning.select import check_scope, select


class Movement(Pruner):
    """Scores S = -sum over fine-tuning steps of W * dL/dW, accumulated before every optimizer step.

    The first-order criterion for fine-tuning a pretrained model: a weight that training moves
    towards zero (W * dL/dW > 0) loses score. Pruning needs steps to score, so it runs on a gradual
    schedule (`needs_gradual`); the scores are part of the checkpoint.
    """

    needs_gradual = True

    def __init__(self, scope: str = "global", exclude: tuple[str, ...] = (), exclude_output: bool = True):
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
