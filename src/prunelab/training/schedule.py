"""Schedules: which sparsities, when to prune to them, how long to train, where survivors restart."""

from dataclasses import dataclass
from typing import NamedTuple, Sequence

from prunelab.errors import ConfigError

REWIND_POINTS = ("init", "random")  # besides a number of optimizer steps


class Retraining(NamedTuple):
    """What a `retrain` setting does with each pruned network."""

    reinitialise: bool  # train it from a fresh initialisation, for dense training's epochs at the optimizer's LR
    match_compute: bool  # lengthen its stage to dense training's compute (dense MACs / pruned MACs times its epochs)


RETRAININGS = {  # Liu et al. 2019, by `Schedule.retrain`
    "finetune": Retraining(reinitialise=False, match_compute=False),
    "scratch_e": Retraining(reinitialise=True, match_compute=False),
    "scratch_b": Retraining(reinitialise=True, match_compute=True),
}


@dataclass(frozen=True)
class Schedule:
    """Dense training for `pretrain_epochs`, then one stage per target of `finetune_epochs` each
    (no targets: dense training only, one results row).

    `cumulative=True` (iterative): each stage prunes further from the previous one, pruned
    weights stay pruned. `cumulative=False` (one-shot): each stage prunes the dense weights.
    Stages train at `finetune_lr_scale` times the optimizer's learning rate.
    `rewind` (lottery tickets): after each pruning, the surviving weights restart from their
    values at initialisation (`init`), after `k` optimizer steps of dense training (an int),
    or from a fresh draw of the model's initialiser under another seed (`random`).
    `save_masks` writes every stage's masks to `masks.pt` in the run directory.
    `retrain` (Liu et al. 2019): `finetune` the pruned network, or train it from a fresh
    initialisation (the pruned architecture, or fresh weights under the mask) at the optimizer's own
    learning rate for the dense training's epochs (`scratch_e`), or for as many times more epochs as
    the dense model has MACs more than the pruned one (`scratch_b`, the same compute; the engine sets
    that stage's length once it has pruned).
    """

    targets: Sequence[float]
    finetune_epochs: int
    pretrain_epochs: int
    cumulative: bool = True
    finetune_lr_scale: float = 1.0
    rewind: str | int | None = None
    save_masks: bool = False
    retrain: str = "finetune"

    gradual = False  # whether stages prune between steps too (`target_at` after step 0)

    def __post_init__(self):
        object.__setattr__(self, "targets", tuple(float(t) for t in self.targets))
        check_schedule(self)

    def check_steps(self, steps_per_epoch: int) -> None:
        """Raise a ConfigError for settings that cannot work with `steps_per_epoch` optimizer steps."""
        dense_steps = self.pretrain_epochs * steps_per_epoch
        if self.rewind_step is not None and self.rewind_step > dense_steps:
            raise ConfigError("schedule.rewind", f"step {self.rewind_step} is beyond dense training "
                              f"({dense_steps} steps)", f"give a step <= {dense_steps}, or more pretrain_epochs")

    @property
    def num_stages(self) -> int:
        """Pruning stages, not counting the dense stage 0."""
        return len(self.targets)

    @property
    def total_epochs(self) -> int:
        """Epochs of all stages at their planned lengths."""
        return sum(self.stage_epochs(k) for k in range(self.num_stages + 1))

    @property
    def retraining(self) -> Retraining:
        """What `retrain` does with each pruned network."""
        return RETRAININGS[self.retrain]

    @property
    def rewind_step(self) -> int | None:
        """The dense-training optimizer step whose weights survivors restart from (None: no snapshot)."""
        return 0 if self.rewind == "init" else self.rewind if isinstance(self.rewind, int) else None

    def stage_at_epoch(self, epoch: int, lengths: Sequence[int] = ()) -> int:
        """0 during dense training, k during the training of target k (1-based); `lengths`: the stages'
        epochs where they differ from `stage_epochs` (scratch_b)."""
        end = 0
        for stage in range(self.num_stages + 1):
            end += lengths[stage] if lengths else self.stage_epochs(stage)
            if epoch < end:
                return stage
        return self.num_stages

    def stage_epochs(self, stage: int) -> int:
        """Planned epochs of `stage`: dense training's, or fine-tuning's (training from scratch: dense training's)."""
        return self.pretrain_epochs if stage == 0 or self.retraining.reinitialise else self.finetune_epochs

    def stage_lr_scale(self, stage: int) -> float:
        return 1.0 if stage == 0 or self.retraining.reinitialise else self.finetune_lr_scale

    def target_at(self, stage: int, step: int, steps_per_epoch: int) -> float | None:
        """The sparsity to prune to after `step` optimizer steps of stage `stage` (>= 1), or None.

        Here: the stage's target at its start, nothing after.
        """
        return self.targets[stage - 1] if step == 0 else None


def agp_sparsity(t: int, s_i: float, s_f: float, t0: int, n: int, dt: int) -> float:
    """Zhu & Gupta (2017): s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^3 for t in [t0, t0 + n dt].

    The sparsity changes only every `dt` steps, so t is rounded down to t0 + j dt; it is exactly
    s_i up to t0 and exactly s_f from t0 + n dt on.
    """
    j = min(max((t - t0) // dt, 0), n)
    return s_i if j == 0 else s_f + (s_i - s_f) * (1.0 - j / n) ** 3


@dataclass(frozen=True)
class GradualSchedule(Schedule):
    """Automated gradual pruning (AGP): each stage ramps from the previous target to its own.

    Every `every` optimizer steps of the stage's first `ramp_epochs` epochs the weights are
    pruned to `agp_sparsity` (t0 = the stage's first step), then trained on at the target for
    the rest of the stage. One results row per target, at the end of its stage.
    """

    ramp_epochs: int = 1
    every: int = 100

    gradual = True

    def __post_init__(self):
        super().__post_init__()
        if not 1 <= self.ramp_epochs <= self.finetune_epochs:
            raise ConfigError("schedule.ramp_epochs", f"must be in [1, finetune_epochs={self.finetune_epochs}], "
                              f"got {self.ramp_epochs}", "ramp over at most the stage's epochs")
        if self.every < 1:
            raise ConfigError("schedule.every", f"must be >= 1 optimizer step, got {self.every}", "e.g. every=100")

    def check_steps(self, steps_per_epoch: int) -> None:
        super().check_steps(steps_per_epoch)
        if self.ramp_steps(steps_per_epoch) < self.every:
            raise ConfigError("schedule.every", f"{self.every} steps is longer than the ramp "
                              f"({self.ramp_steps(steps_per_epoch)} steps)", "prune more often, or ramp longer")

    def ramp_steps(self, steps_per_epoch: int) -> int:
        return self.ramp_epochs * steps_per_epoch

    def target_at(self, stage: int, step: int, steps_per_epoch: int) -> float | None:
        n = self.ramp_steps(steps_per_epoch) // self.every
        if step % self.every or step > n * self.every:
            return None
        start = self.targets[stage - 2] if stage > 1 else 0.0
        return agp_sparsity(step, start, self.targets[stage - 1], 0, n, self.every)


def check_schedule(s: Schedule) -> None:
    """Raise a ConfigError naming the setting for a schedule that cannot run."""
    if not s.targets and s.pretrain_epochs < 1:
        raise ConfigError("schedule.targets", "no target sparsities and no dense training: nothing to train",
                          "e.g. schedule.targets=[0.5,0.8,0.9], or schedule.pretrain_epochs >= 1 to train dense only")
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
    if not s.finetune_lr_scale > 0:
        raise ConfigError("schedule.finetune_lr_scale", f"must be > 0, got {s.finetune_lr_scale}", "e.g. 0.1 or 1.0")
    check_rewind(s)
    check_retrain(s)


def check_retrain(s: Schedule) -> None:
    """Training from scratch needs a known pruned network per target and a dense training to match."""
    if s.retrain not in RETRAININGS:
        raise ConfigError("schedule.retrain", f"unknown retraining {s.retrain!r}", f"use one of {list(RETRAININGS)}")
    if not s.retraining.reinitialise:
        return
    if s.cumulative:
        raise ConfigError("schedule.retrain", f"{s.retrain} retrains the network the method prunes from the dense "
                          "model, but this schedule prunes each stage from the last", "use schedule=oneshot")
    if s.rewind is not None:
        raise ConfigError("schedule.retrain", f"{s.retrain} draws fresh weights, but schedule.rewind={s.rewind}",
                          "set schedule.rewind=null")
    if s.pretrain_epochs < 1:
        raise ConfigError("schedule.retrain", f"{s.retrain} trains as long as dense training, which has 0 epochs",
                          "set schedule.pretrain_epochs >= 1")


def check_rewind(s: Schedule) -> None:
    """`rewind` is null, `init`, `random` or a step count within dense training."""
    if s.rewind is None or s.rewind in REWIND_POINTS:
        return
    if isinstance(s.rewind, bool) or not isinstance(s.rewind, int) or s.rewind < 0:
        raise ConfigError("schedule.rewind", f"unknown rewind point {s.rewind!r}",
                          f"use null, one of {list(REWIND_POINTS)}, or a number of optimizer steps such as 500")
    if s.pretrain_epochs == 0 and s.rewind > 0:
        raise ConfigError("schedule.rewind", f"step {s.rewind} needs dense training, but pretrain_epochs=0",
                          "set schedule.pretrain_epochs > 0, or schedule.rewind=init")
