"""The pruner contract: what the stage engine and `prunelab.prune` call on every pruner.

One override point, `prune`, as in jaxpruner's `BaseUpdater` and torch.ao's `BaseSparsifier`; every other
hook is a no-op here, so a pruner overrides only what it does. Every option of the `pruning` config group
builds a `Pruner`.
"""

from torch import nn

from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.masks import Masks, prunable_parameters


class Pruner:
    """Base of every pruner. Override `prune`; override the hooks your method needs.

    Called in a run's order: `parameters` (what masks cover) and `check` (the targets) before any training;
    `dense_penalty` before each dense optimizer step; per stage `parameters`, `prune` (new masks at a target),
    `removal` (what rebuilds removed structure); while a pruned network trains, `observe` before each
    optimizer step, `stepped` right after it and `update` once the pruned weights are zero again;
    `state_dict`/`load_state_dict` in every checkpoint; `replay` when a checkpoint is resumed.
    """

    # Scores weights while they train, so it can only prune between steps of a gradual schedule.
    needs_gradual: bool = False

    def parameters(self, model: nn.Module) -> dict[str, nn.Parameter]:
        """The tensors this pruner's masks cover (a ConfigError when none are left to prune)."""
        return prunable_parameters(model)

    def check(self, model: nn.Module, targets: list[float]) -> None:
        """Before any training: a ConfigError for a target this pruner cannot reach on `model`."""

    def weights(self, model: nn.Module) -> dict[str, nn.Parameter]:
        """The prunable weights `weight_sparsity` counts (see `prunelab.results`); `parameters` unless they differ."""
        return self.parameters(model)

    def prune(self, model: nn.Module, masks: Masks, target: float, ctx: ScoreContext) -> Masks:
        """Masks over `parameters(model)` at sparsity `target`, given the current `masks`; zero what they prune
        (or remove it: then return the masks of what is still zeroed, {} if nothing)."""
        raise NotImplementedError(f"{type(self).__name__} must define prune(model, masks, target, ctx)")

    def dense_penalty(self, model: nn.Module) -> None:
        """During dense training, before each optimizer step: add a penalty's gradient (network slimming)."""

    def observe(self, params: dict[str, nn.Parameter], step: int, steps: int) -> None:
        """Before optimizer step `step` + 1 of a stage of `steps`: read the dense gradients of `params` (the
        engine masks them after this call); a pruner that keeps pruned weights' values may write them back
        here, for the optimizer to update (movement pruning)."""

    def stepped(self, params: dict[str, nn.Parameter]) -> None:
        """Right after each optimizer step of a pruned network, before the engine zeroes the pruned weights
        again: the weights as the optimizer left them (movement pruning keeps the pruned ones' values)."""

    def update(self, params: dict[str, nn.Parameter], masks: Masks, step: int, steps: int, seed: int) -> Masks | None:
        """After `step` optimizer steps: new masks to move to (regrowth), or None to keep them."""
        return None

    def removal(self) -> dict:
        """What rebuilds the pruned structure from the dense model (`replay`); {} when nothing was removed."""
        return {}

    def replay(self, model: nn.Module, removal: dict, example) -> None:
        """Remove from the dense `model` what `removal` records (a resumed run)."""

    def state_dict(self) -> dict:
        """What the pruner learns while training (movement scores), for checkpoints."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()`."""
