"""Lottery tickets: weight rewinding, random re-initialisation and replaying a ticket's masks."""

from pathlib import Path
from typing import Callable

import torch
from torch import nn

from prunelab.errors import ConfigError
from prunelab.pruning.masks import Masks

State = dict[str, torch.Tensor]


def snapshot(model: nn.Module) -> State:
    """A detached copy of every parameter and buffer."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def fresh_init(model_factory: Callable[[], nn.Module], seed: int) -> State:
    """The state of a newly built model drawn under `seed`, leaving the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return snapshot(model_factory())


class Rewinder:
    """Where surviving weights restart after pruning (`schedule.rewind`).

    `init` or a step count k: the weights after k optimizer steps of dense training (init = 0),
    captured by `observe` and restored exactly by `restore` (Frankle & Carbin 2019; Frankle et
    al. 2020). `random`: a fresh draw of the model's initialiser, under a seed derived from the
    run's seed and the stage, for every stage (the random re-initialisation control).
    None: no rewinding.
    """

    def __init__(self, point: str | int | None, model_factory: Callable[[], nn.Module] | None, seed: int):
        if point == "random" and model_factory is None:
            raise ValueError("rewind=random needs model_factory")
        self.step = 0 if point == "init" else point if isinstance(point, int) else None
        self.random, self.model_factory, self.seed = point == "random", model_factory, seed
        self.state: State | None = None

    def observe(self, model: nn.Module, step: int) -> None:
        """Keep the weights when `step` (optimizer steps done) is the rewind point."""
        if self.state is None and step == self.step:
            self.state = snapshot(model)

    def restore(self, model: nn.Module, stage: int) -> None:
        """Load the rewind point into `model` (masks are applied afterwards by the caller)."""
        if self.random:
            state = fresh_init(self.model_factory, 1_000_003 * (self.seed + 1) + stage)
        elif self.step is not None:
            state = self.state
        else:
            return
        if any(v.shape != state[k].shape for k, v in model.state_dict().items()):
            raise ConfigError("schedule.rewind", "channels were removed, so the saved weights no longer fit",
                              "rewind with an unstructured method, or set pruning.remove=false")
        model.load_state_dict(state)


class TicketMasks:
    """A criterion that replays the masks of a run saved with `schedule.save_masks=true`.

    The score of a weight is the number of that run's stages it survived. Masks of a cumulative
    run nest, so pruning to one of its targets with the same pruner settings keeps exactly the
    weights it kept at that target (used for the random re-initialisation control of a ticket).
    """

    def __init__(self, path: str):
        if not Path(path).is_file():
            raise ConfigError("pruning.criterion.path", f"no masks at {path}",
                              "run the ticket first (schedule.save_masks=true) and give its masks.pt")
        stages: dict[int, Masks] = torch.load(path, map_location="cpu", weights_only=True)
        self.survived = {n: sum(m[n].float() for m in stages.values()) for n in next(iter(stages.values()))}

    def __call__(self, model: nn.Module, params: dict[str, nn.Parameter], ctx) -> dict[str, torch.Tensor]:
        missing = sorted(set(params) - set(self.survived))
        if missing:
            raise ConfigError("pruning.criterion.path", f"the saved masks lack {missing}",
                              "replay masks of the same model with the same pruning.exclude settings")
        return {n: self.survived[n].to(p.device) for n, p in params.items()}
