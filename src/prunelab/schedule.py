"""Schedules: which sparsities, and how many epochs of training around them."""

from dataclasses import dataclass
from typing import Sequence

from prunelab.errors import ConfigError


@dataclass(frozen=True)
class Schedule:
    """Dense training for `pretrain_epochs`, then one stage per target of `finetune_epochs` each.

    `cumulative=True` (iterative): each stage prunes further from the previous one, pruned
    weights stay pruned. `cumulative=False` (one-shot): each stage prunes the dense weights.
    """

    targets: Sequence[float]
    finetune_epochs: int
    pretrain_epochs: int
    cumulative: bool = True

    def __post_init__(self):
        object.__setattr__(self, "targets", tuple(float(t) for t in self.targets))
        check_schedule(self)

    @property
    def num_stages(self) -> int:
        """Pruning stages, not counting the dense stage 0."""
        return len(self.targets)

    @property
    def total_epochs(self) -> int:
        return self.pretrain_epochs + self.num_stages * self.finetune_epochs

    def stage_at_epoch(self, epoch: int) -> int:
        """0 during dense training, k during the fine-tuning of target k (1-based)."""
        if epoch < self.pretrain_epochs:
            return 0
        return 1 + (epoch - self.pretrain_epochs) // self.finetune_epochs

    def stage_epochs(self, stage: int) -> int:
        return self.pretrain_epochs if stage == 0 else self.finetune_epochs


def check_schedule(s: Schedule) -> None:
    """Raise a ConfigError naming the setting for a schedule that cannot run."""
    if not s.targets:
        raise ConfigError("schedule.targets", "no target sparsities given", "e.g. schedule.targets=[0.5,0.8,0.9]")
    bad = [t for t in s.targets if not 0.0 <= t < 1.0]
    if bad:
        raise ConfigError("schedule.targets", f"{bad} outside [0, 1)", "give sparsities such as 0.5 or 0.9")
    if s.cumulative and any(b <= a for a, b in zip(s.targets, s.targets[1:])):
        raise ConfigError(
            "schedule.targets",
            f"iterative targets must increase, got {list(s.targets)}",
            "sort them ascending without repeats, or use schedule=oneshot",
        )
    if s.finetune_epochs < 1:
        raise ConfigError("schedule.finetune_epochs", f"must be >= 1, got {s.finetune_epochs}", "set it to 1 or more")
    if s.pretrain_epochs < 0:
        raise ConfigError("schedule.pretrain_epochs", f"must be >= 0, got {s.pretrain_epochs}", "set it to 0 or more")
