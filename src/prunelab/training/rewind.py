"""Lottery tickets: weight rewinding and random re-initialisation (`schedule.rewind`)."""

from typing import Callable

import torch
from torch import nn

from prunelab.errors import ConfigError
from prunelab.seeds import reinit_seed

State = dict[str, torch.Tensor]


def snapshot(model: nn.Module) -> State:
    """A detached copy of every parameter and buffer."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def fresh_init(model_factory: Callable[[], nn.Module], seed: int) -> State:
    """The state of a newly built model drawn under `seed`, leaving the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return snapshot(model_factory())


def _shapes(state: dict) -> dict:
    return {k: v.shape for k, v in state.items()}


def reinitialise(model: nn.Module, model_factory: Callable[[], nn.Module], seed: int) -> None:
    """Fresh weights for `model` drawn under `seed`, leaving the global RNG as it was.

    The model's own initialiser (`fresh_init`) while its shapes are those of a newly built model; after
    channels were removed, every module's `reset_parameters` (children first, so that a model's own
    `reset_parameters` has the last word), which draws for the pruned widths.
    """
    state = fresh_init(model_factory, seed)
    if _shapes(state) == _shapes(model.state_dict()):
        model.load_state_dict(state)
        return
    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for module in reversed(list(model.modules())):
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()


class Rewinder:
    """Where surviving weights restart after pruning (`schedule.rewind`).

    `init` or a step count k: the weights after k optimizer steps of dense training (init = 0),
    captured by `capture` and restored exactly by `restore` (Frankle & Carbin 2019; Frankle et
    al. 2020). `random`: fresh weights (`reinitialise`), under a seed derived from the run's seed
    and the stage, for every stage (the random re-initialisation control; training from scratch).
    None: no rewinding. The snapshot itself is part of the engine's state, kept by the caller.
    """

    def __init__(self, point: str | int | None, model_factory: Callable[[], nn.Module] | None, seed: int):
        if point == "random" and model_factory is None:
            raise ValueError("rewind=random needs model_factory")
        self.step = 0 if point == "init" else point if isinstance(point, int) else None
        self.random, self.model_factory, self.seed = point == "random", model_factory, seed

    def capture(self, model: nn.Module, step: int, saved: State | None) -> State | None:
        """The snapshot to keep: `saved`, or the weights now if none is saved and `step` is the rewind point."""
        if saved is None and step == self.step:
            return snapshot(model)
        return saved

    def restore(self, model: nn.Module, stage: int, saved: State | None) -> None:
        """Load the rewind point (`saved`, or a fresh draw) into `model`; masks are applied afterwards by the caller."""
        if self.random:
            reinitialise(model, self.model_factory, reinit_seed(self.seed, stage))
            return
        if self.step is None:
            return
        if any(v.shape != saved[k].shape for k, v in model.state_dict().items()):
            raise ConfigError("schedule.rewind", "channels were removed, so the saved weights no longer fit",
                              "rewind with an unstructured method, or set pruning.remove=false")
        model.load_state_dict(saved)
