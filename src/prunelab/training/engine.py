"""The stage engine: dense training (stage 0), then per target prune -> evaluate -> fine-tune -> evaluate.

Plain Python over a `Host`, the few things a training loop offers (the model, evaluation, training
batches, rebuilding the optimizer); `training.callback` adapts Lightning's hooks to it, one or two
calls each. The engine owns the stage machine and its state; `training.masking` holds the masks,
`training.recording` turns what a stage measured into rows, and what a stage produced goes to `Sink`s
(files, loggers) that the caller chose.
"""

import copy
import logging
import math
import time
from dataclasses import dataclass, field, fields
from typing import Callable, Iterable, Protocol, Sequence

import torch
from torch import nn

from prunelab import results
from prunelab.errors import ConfigError, Diverged
from prunelab.pruning.contract import Pruner
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.masks import Masks, count_parameters, full_masks, param_sparsity, weight_sparsity
from prunelab.seeds import epoch_seed, prune_generator, update_seed
from prunelab.tasks import CLASSIFICATION, Task
from prunelab.training import recording
from prunelab.training.losses import cross_entropy
from prunelab.training.masking import HeldMasks
from prunelab.training.meter import Meter, nonzero_macs
from prunelab.training.recording import StageMeasures
from prunelab.training.recovery import FullFineTuning
from prunelab.training.rewind import Rewinder
from prunelab.training.schedule import Schedule

log = logging.getLogger(__name__)


class Host(Protocol):
    """What the training loop offers the engine."""

    model: nn.Module
    is_primary: bool  # the one process (of a DDP run) that writes files
    steps_per_epoch: int
    input_shape: Sequence[int]
    calibration: Callable[[int, int], torch.Tensor] | None  # the data's calibration samples (see ScoreContext)

    def evaluate(self, split: str) -> dict[str, float]:
        """The task's metrics of the current weights on `split` ("val" or "test"), by name (`acc`, `acc_top5`)."""

    def train_batches(self) -> Iterable:
        """A fresh iterable over the training batches."""

    def set_stage(self, epochs: int, lr_scale: float) -> None:
        """Length and LR scale of the stage the optimizer is built for."""

    def rebuild_optimizers(self) -> None:
        """Build the optimizer and LR schedule afresh (after a stage starts or parameters changed)."""

    def model_changed(self) -> None:
        """Parameters were replaced (channels removed): refresh wrappers that hold references to them."""

    def set_total_epochs(self, epochs: int) -> None:
        """The run now trains for `epochs` epochs in all (a stage's length was set when it began)."""


@dataclass
class StageRecord:
    """What a finished stage produced, for the sinks."""

    stage: int
    row: dict
    layers: list[dict]
    rows: list[dict]
    layer_rows: list[dict]
    step: int
    model: nn.Module
    stage_masks: dict[int, Masks]


class Sink(Protocol):
    """Where stages go: the run folder, the loggers."""

    def start(self) -> None: ...

    def stage_done(self, record: StageRecord) -> None: ...

    def run_done(self, rows: list[dict]) -> None: ...


@dataclass
class EngineState:
    """Everything the engine needs to continue a killed run; saved in every checkpoint."""

    stage: int = 0
    masks: Masks | None = None
    rows: list[dict] = field(default_factory=list)
    pending: dict = field(default_factory=dict)  # the metric before fine-tuning of the running stage
    dense_state: dict | None = None  # one-shot: the dense weights every stage starts from
    dense_weights: int | None = None  # the dense model's prunable weights (`Pruner.weights`)
    layer_rows: list[dict] = field(default_factory=list)
    rewind_state: dict | None = None
    stage_start_step: int = 0
    stage_masks: dict[int, Masks] = field(default_factory=dict)
    stage_epochs: list[int] = field(default_factory=list)  # lengths set when stages began (scratch_b)
    pruner_state: dict = field(default_factory=dict)  # what a pruner learns while training (movement scores)
    removal: dict = field(default_factory=dict)  # structural pruners: what rebuilds the pruned model from the dense


class StageEngine:
    """Runs a pruning `schedule` with `pruner` over one continuous training of `schedule.total_epochs` epochs.

    At the first epoch of stage k it finishes stage k-1 (one results row), prunes to target k,
    measures the task's validation metric before fine-tuning, and rebuilds the optimizer and LR schedule.
    Pruned weights are held at exactly zero: gradients are masked before every optimizer step and
    weights after it (a pruner that keeps pruned weights' values, movement pruning, restores them for the
    step in `observe` and reads them back in `stepped`). The pruner is a `prunelab.pruning.Pruner`; the
    engine calls its hooks (see there): `dense_penalty` during dense training, `observe` before,
    `stepped` right after and `update` after the re-zeroing of each optimizer step of a pruned network,
    `removal`/`replay` for removed structure. Gradual schedules (`schedule.target_at`
    during a stage) prune between steps. A non-finite training loss raises `Diverged`.
    Training from scratch (`schedule.retraining`) re-initialises each pruned network, and where it
    matches compute (scratch_b) sets its stage's length from the dense and pruned MACs.
    """

    def __init__(self, pruner: Pruner, schedule: Schedule, labels: dict, meter: Meter | None = None,
                 model_factory: Callable[[], nn.Module] | None = None, sinks: Sequence[Sink] = (),
                 task: Task = CLASSIFICATION, recovery=None):
        self.pruner, self.schedule, self.labels, self.task = pruner, schedule, dict(labels), task
        self.recovery = recovery or FullFineTuning()
        self.seed = int(self.labels.get("seed", 0))
        self.meter = meter or Meter()
        check_pruner(pruner, schedule)
        rewind = "random" if schedule.retraining.reinitialise else schedule.rewind
        self.rewinder = Rewinder(rewind, model_factory, self.seed)
        self.sinks = list(sinks)
        self.state = EngineState()
        self._dense_model: nn.Module | None = None
        self._held = HeldMasks()
        self._started = self._stage_started = time.perf_counter()

    # -- what the training loop calls ------------------------------------------------------
    @property
    def masks(self) -> Masks | None:
        return self.state.masks

    @property
    def rows(self) -> list[dict]:
        return self.state.rows

    @property
    def layer_rows(self) -> list[dict]:
        return self.state.layer_rows

    def configure(self, host: Host) -> None:
        """Tell the host the length and LR scale of the current stage."""
        stage = self.state.stage
        host.set_stage(self._lengths()[stage], self.schedule.stage_lr_scale(stage))

    def start(self, host: Host) -> None:
        """Training (re)starts: open the sinks, hold restored masks, keep a lengthened run's length."""
        for sink in self.sinks:
            sink.start()
        if self.state.masks is not None:
            self._hold_masks(host.model)
        if sum(self._lengths()) != self.schedule.total_epochs:
            host.set_total_epochs(sum(self._lengths()))

    def epoch_seed(self, epoch: int) -> int:
        """The global seed of `epoch`: random draws are a function of (seed, epoch), so resumed runs agree."""
        return epoch_seed(self.seed, epoch)

    def epoch_start(self, host: Host, epoch: int, step: int) -> None:
        """Before epoch `epoch` (`step` optimizer steps done): enter the next stage when it begins here."""
        self.schedule.check_steps(host.steps_per_epoch)
        self.state.rewind_state = self.rewinder.capture(host.model, step, self.state.rewind_state)
        stage = self.schedule.stage_at_epoch(epoch, self._lengths())
        if stage > self.state.stage:
            self._finish_stage(host, epoch, step)
            self._begin_stage(stage, host, step)

    def before_optimizer_step(self, host: Host, step: int) -> None:
        """Before optimizer step `step` + 1: dense training's gradient penalty; a pruner observes the dense
        gradients; pruned weights get no gradient."""
        if self.state.stage == 0:
            self.pruner.dense_penalty(host.model)
        else:
            self.pruner.observe(self._held.params, step - self.state.stage_start_step, self._stage_steps(host))
        if self.state.masks is not None:
            self._held.mask_gradients()

    def batch_end(self, host: Host, step: int) -> None:
        """After an optimizer step: keep the rewind point, show the pruner the stepped weights, prune on a gradual
        schedule, re-zero pruned weights, let the pruner move the mask (regrown weights start at the zero they
        were held at, unless the pruner kept their values)."""
        if self.state.stage == 0:
            self.state.rewind_state = self.rewinder.capture(host.model, step, self.state.rewind_state)
        else:
            self.pruner.stepped(self._held.params)
            self._prune_on_schedule(host, step)
        if self.state.masks is not None:
            self._held.mask_weights()
        if self.state.stage:
            self._update_masks(host, step)

    def epoch_end(self, loss: torch.Tensor, epoch: int, model: nn.Module) -> None:
        """Stop the run with `Diverged` when the epoch's training loss is not finite."""
        if not torch.isfinite(loss):
            raise Diverged(self.state.stage, self._weight_sparsity(model), epoch)

    def finish(self, host: Host, epoch: int, step: int) -> None:
        """Training ended: finish the last stage (once) and close the curve."""
        if self._stage_has_row():
            return
        self._finish_stage(host, epoch, step)
        if host.is_primary:
            for sink in self.sinks:
                sink.run_done(self.state.rows)

    def state_dict(self) -> dict:
        """The engine's state for a checkpoint (see `EngineState`)."""
        state = {f.name: getattr(self.state, f.name) for f in fields(EngineState)}
        if self._dense_model is not None:
            state["dense_state"] = self._dense_model.state_dict()
        state["pruner_state"] = self.pruner.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.state = EngineState(**{f.name: state[f.name] for f in fields(EngineState) if f.name in state})
        self.pruner.load_state_dict(self.state.pruner_state or {})

    def rebuild(self, model: nn.Module, state: dict, input_shape: Sequence[int]) -> None:
        """Give the freshly built `model` the architecture of a checkpoint with engine state `state`, so that the
        checkpoint's weights fit it: one-shot keeps the dense weights to prune from, removed channels go again."""
        self.load_state_dict(state)
        if self.state.dense_state is not None:
            self._keep_dense(model)
        if self.state.removal:
            example = torch.zeros(1, *input_shape, device=next(model.parameters()).device)
            self.pruner.replay(model, self.state.removal, example)
        if self.state.stage and not self._stage_has_row():  # killed while fine-tuning: the adapters come back
            self.recovery.attach(model)

    # -- stages ----------------------------------------------------------------------------
    def _stage_has_row(self) -> bool:
        return recording.has_row(self.state.rows, self.state.stage)

    def _keep_dense(self, model: nn.Module) -> None:
        """Keep a copy of `model` to prune every one-shot stage from; a resumed run's copy gets the dense
        weights its checkpoint holds."""
        self._dense_model = copy.deepcopy(model)
        if self.state.dense_state is not None:
            self._dense_model.load_state_dict(self.state.dense_state)

    def _begin_stage(self, stage: int, host: Host, step: int) -> None:
        state = self.state
        if not self.schedule.cumulative:  # one-shot: every stage prunes the dense model
            if self._dense_model is None:
                self._keep_dense(host.model)
            host.model = restore_dense(host.model, self._dense_model)
            state.masks = None
        params = self.pruner.parameters(host.model)
        if state.dense_weights is None:
            state.dense_weights = sum(w.numel() for w in self.pruner.weights(host.model).values())
        if state.masks is None:
            state.masks = full_masks(params)
        state.stage, state.stage_start_step = stage, step
        self._prune(self.schedule.target_at(stage, 0, host.steps_per_epoch), host)
        if self.schedule.retraining.match_compute:
            self._match_compute(host)
        self.rewinder.restore(host.model, stage, state.rewind_state)
        self._hold_masks(host.model)
        self.recovery.attach(host.model)  # before the optimizer is built: it trains the adapters alone
        host.set_stage(self._lengths()[stage], self.schedule.stage_lr_scale(stage))
        host.rebuild_optimizers()

    def _lengths(self) -> list[int]:
        """Every stage's epochs: as set when it began, else as planned."""
        planned = [self.schedule.stage_epochs(k) for k in range(self.schedule.num_stages + 1)]
        return self.state.stage_epochs or planned

    def _match_compute(self, host: Host) -> None:
        """Matching compute (scratch_b): this stage trains dense MACs / pruned MACs times dense training's epochs."""
        ratio = recording.dense_macs(self.state.rows) / nonzero_macs(host.model, host.input_shape)
        lengths = self._lengths()
        lengths[self.state.stage] = max(1, round(self.schedule.pretrain_epochs * ratio))
        self.state.stage_epochs = lengths
        host.set_total_epochs(sum(lengths))

    def _stage_steps(self, host: Host) -> int:
        return self._lengths()[self.state.stage] * host.steps_per_epoch

    def _update_masks(self, host: Host, global_step: int) -> None:
        """Let a pruner that trains sparse move the mask (SET, RigL)."""
        step = global_step - self.state.stage_start_step
        masks = self.pruner.update(self._held.params, self.state.masks, step, self._stage_steps(host),
                            update_seed(self.seed, self.state.stage, step))
        if masks is not None:
            self.state.masks = masks
            self._hold_masks(host.model)

    def _prune(self, target: float, host: Host, measure: bool = True) -> None:
        """Prune to `target`; with `measure`, take the validation metric at once (before fine-tuning), and the test
        metric too where `metrics.test_before_ft` asks for it."""
        ctx = ScoreContext(batches=host.train_batches, loss=cross_entropy,
                           generator=prune_generator(self.seed, self.state.stage), calibration=host.calibration)
        self.state.masks = self.pruner.prune(host.model, self.state.masks, target, ctx)
        self.state.removal = self.pruner.removal()
        host.model_changed()
        self._hold_masks(host.model)
        if measure:
            metric = self.task.metric.name
            self.state.pending = {results.before_ft(metric): host.evaluate("val")[metric]}
            if self.meter.test_before_ft:
                self.state.pending[results.test_before_ft(metric)] = host.evaluate("test")[metric]

    def _prune_on_schedule(self, host: Host, global_step: int) -> None:
        """Gradual schedules prune during the stage too (AGP); the metric is taken once the target is reached."""
        stage = self.state.stage
        step = global_step - self.state.stage_start_step
        target = self.schedule.target_at(stage, step, host.steps_per_epoch)
        if step and target is not None:
            self._prune(target, host, measure=target == self.schedule.targets[stage - 1])

    def _finish_stage(self, host: Host, epoch: int, step: int) -> None:
        if self._stage_has_row():
            return
        if self.state.stage:
            self.recovery.merge(host.model)
            self._hold_masks(host.model)  # the merged weights zero where they are pruned
        state, model = self.state, host.model
        val, test = host.evaluate("val"), host.evaluate("test")
        metric = self.task.metric.name
        params, nonzero = count_parameters(model)
        dense = state.rows[0] if state.rows else None
        compute, costs = self.meter.measure(model, host.input_shape, params, nonzero, dense,
                                            latency=self.meter.times(state.stage, self.schedule.num_stages))
        now = time.perf_counter()
        measured = StageMeasures(
            stage=state.stage, target=self.schedule.targets[state.stage - 1] if state.stage else 0.0,
            weight_sparsity=self._weight_sparsity(model),
            param_sparsity=param_sparsity(model, dense[results.PARAMS] if dense else None), params=params, nonzero=nonzero,
            empty_layers=sum(not bool(m.any()) for m in state.masks.values()) if state.masks is not None else 0,
            compute=compute, metric=metric, before_ft=state.pending.get(results.before_ft(metric), val[metric]),
            test_before_ft=state.pending.get(results.test_before_ft(metric),
                                             test[metric] if self.meter.test_before_ft else math.nan),
            val=val, test=test,
            epoch=epoch, stage_time_s=now - self._stage_started, wall_time_s=now - self._started,
        )
        row = recording.stage_row(self.labels, measured)
        self._stage_started = time.perf_counter()
        state.rows.append(row)
        state.pending = {}
        layers = recording.layer_rows(state.stage, costs, recording.dense_layer_params(state.layer_rows))
        state.layer_rows += layers
        if self.schedule.save_masks and state.stage:
            state.stage_masks[state.stage] = {n: m.cpu() for n, m in state.masks.items()}
        if host.is_primary:  # one writer under DDP
            record = StageRecord(state.stage, row, layers, state.rows, state.layer_rows, step, model,
                                 state.stage_masks)
            for sink in self.sinks:
                sink.stage_done(record)
        log.info("%s", recording.stage_line(row, self.schedule.num_stages, metric))

    def _weight_sparsity(self, model: nn.Module) -> float:
        return weight_sparsity(self.pruner.weights(model), self.state.dense_weights, self.state.masks)

    def _hold_masks(self, model: nn.Module) -> None:
        self.state.masks = self._held.hold(self.pruner.parameters(model), self.state.masks)


def check_pruner(pruner: Pruner, schedule: Schedule) -> None:
    """A ConfigError for an object that is not a `Pruner`, or a pruner that cannot prune on `schedule`."""
    if not isinstance(pruner, Pruner):
        raise ConfigError("pruning._target_", f"{type(pruner).__name__} is not a pruner",
                          "subclass prunelab.pruning.Pruner, or give your criterion to prunelab.pruning.UnstructuredPruner")
    if pruner.needs_gradual and not schedule.gradual:
        raise ConfigError("schedule", f"{type(pruner).__name__} scores weights while they train, so it prunes "
                          "between steps, which this schedule does not", "use a gradual schedule: schedule=agp")


def _shapes(model: nn.Module) -> dict:
    return {k: v.shape for k, v in model.state_dict().items()}


def restore_dense(model: nn.Module, dense: nn.Module) -> nn.Module:
    """`model` with the weights of `dense` again: in place while the shapes still match (parameter
    objects, and so DDP's references, stay); a fresh copy of `dense` after channels were removed."""
    if _shapes(model) == _shapes(dense):
        model.load_state_dict(dense.state_dict())
        return model
    return copy.deepcopy(dense)
