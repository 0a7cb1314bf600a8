"""The pruning callback: dense training, then per target score -> prune -> evaluate -> fine-tune -> evaluate."""

import copy
import logging
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from prunelab import tracking
from prunelab.errors import Diverged
from prunelab.metrics import Meter, layer_rows, pruned_fraction
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.masks import Masks, apply_masks, count_parameters, full_masks
from prunelab.pruning.surgery import restore_dense, rewrap_ddp
from prunelab.rewind import Rewinder
from prunelab.schedule import Schedule

log = logging.getLogger(__name__)


def epoch_seed(seed: int, epoch: int) -> int:
    """The global seed of one epoch of a run."""
    return (seed * 100003 + epoch) % 2**32


class PruningCallback(pl.Callback):
    """Runs a pruning schedule inside one `Trainer.fit` of `schedule.total_epochs` epochs.

    At the first epoch of stage k it finishes stage k-1 (one results row), prunes to target k,
    measures accuracy before fine-tuning, and rebuilds the optimizer and LR schedule. Pruned
    weights are held at exactly zero: gradients are masked before every optimizer step and
    weights after it. A pruner may remove channels (new parameter shapes) and may define
    `dense_penalty(model)`, applied to the gradients during dense training. Each row carries compute
    metrics measured by `meter`; the dense model is saved as `dense.pt` and per-layer sparsity as
    `layer_sparsity.csv` beside results. Masks, stage and rows are in the checkpoint (`state_dict`);
    so is anything else a run needs to continue (add it to `state_dict` and `load_state_dict`).
    A non-finite training loss stops the run with `Diverged`.
    """

    def __init__(self, pruner, schedule: Schedule, run_info: dict, results_path: Path | None = None,
                 meter: Meter | None = None, model_factory=None):
        self.pruner, self.schedule = pruner, schedule
        self.rewinder = Rewinder(schedule.rewind, model_factory, run_info.get("seed", 0))
        self.stage_start_step = 0
        self.stage_masks: dict[int, Masks] = {}
        self.meter = meter or Meter()
        self.dense_penalty = getattr(pruner, "dense_penalty", None)
        self.run_info = dict(run_info)
        self.results_path = Path(results_path) if results_path else None
        self.stage = 0
        self.masks: Masks | None = None
        self.rows: list[dict] = []
        self.pending: dict = {}
        self.dense_state: dict | None = None
        self.dense_model = None  # one-shot: the dense module every stage starts from
        self.dense_total: int | None = None  # weights the pruner may touch in the dense model
        self.layer_rows: list[dict] = []
        self._started = self._stage_started = time.perf_counter()

    # -- Lightning hooks -------------------------------------------------------------------
    def setup(self, trainer, pl_module, stage):
        pl_module.set_stage(self.schedule.stage_epochs(self.stage), self.schedule.stage_lr_scale(self.stage))

    def on_fit_start(self, trainer, pl_module):
        tracking.define_stage_metrics(trainer.loggers)
        trainer.datamodule.setup("test")
        if self.masks is not None:
            self._enforce_masks(pl_module)

    def on_train_epoch_start(self, trainer, pl_module):
        # Random draws are a function of (seed, epoch), so a resumed run draws what an uninterrupted one would.
        pl.seed_everything(epoch_seed(self.run_info.get("seed", 0), trainer.current_epoch), verbose=False)
        self.schedule.check_steps(trainer.num_training_batches)
        self.rewinder.observe(pl_module.model, trainer.global_step)
        stage = self.schedule.stage_at_epoch(trainer.current_epoch)
        if stage > self.stage:
            self._finish_stage(trainer, pl_module)
            self._begin_stage(stage, trainer, pl_module)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        if self.stage == 0 and self.dense_penalty is not None:
            self.dense_penalty(pl_module.model)
        if self.masks is not None:
            grads = [(p.grad, m) for p, m in self._pairs if p.grad is not None]
            apply_masks([g for g, _ in grads], [m for _, m in grads])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.stage == 0:
            self.rewinder.observe(pl_module.model, trainer.global_step)
        else:
            self._prune_on_schedule(trainer, pl_module)
        if self.masks is not None:
            apply_masks([p for p, _ in self._pairs], [m for _, m in self._pairs])

    def on_train_epoch_end(self, trainer, pl_module):
        loss = pl_module.train_loss()
        if not torch.isfinite(loss):
            raise Diverged(self.stage, self._sparsity(pl_module.model), trainer.current_epoch)

    def on_train_end(self, trainer, pl_module):
        self._finish_stage(trainer, pl_module)
        tracking.log_curve(trainer.loggers, self.rows)

    def on_fit_end(self, trainer, pl_module):
        if not any(r["stage"] == self.stage for r in self.rows):  # resumed after the last epoch: no on_train_end
            self.on_train_end(trainer, pl_module)

    def state_dict(self) -> dict:
        dense_state = self.dense_model.state_dict() if self.dense_model is not None else self.dense_state
        return {"stage": self.stage, "masks": self.masks, "rows": self.rows, "pending": self.pending,
                "dense_state": dense_state, "dense_total": self.dense_total, "layer_rows": self.layer_rows,
                "rewind_state": self.rewinder.state, "stage_start_step": self.stage_start_step,
                "stage_masks": self.stage_masks}

    def load_state_dict(self, state: dict) -> None:
        self.stage, self.masks = state["stage"], state["masks"]
        self.rows, self.pending, self.dense_state = state["rows"], state["pending"], state["dense_state"]
        self.dense_total, self.layer_rows = state.get("dense_total"), state.get("layer_rows", [])
        self.rewinder.state, self.stage_start_step = state.get("rewind_state"), state.get("stage_start_step", 0)
        self.stage_masks = state.get("stage_masks", {})

    # -- stages ----------------------------------------------------------------------------
    def _begin_stage(self, stage: int, trainer, pl_module) -> None:
        model = pl_module.model
        if not self.schedule.cumulative:  # one-shot: every stage prunes the dense model
            if self.dense_model is None:
                self.dense_model = copy.deepcopy(model)
                if self.dense_state is not None:  # resumed: the checkpoint holds the dense weights
                    self.dense_model.load_state_dict(self.dense_state)
            model = restore_dense(pl_module, self.dense_model)
            self.masks = None
        params = self.pruner.parameters(model)
        if self.dense_total is None:
            self.dense_total = sum(p.numel() for p in params.values())
        if self.masks is None:
            self.masks = full_masks(params)
        self.stage, self.stage_start_step = stage, trainer.global_step
        self._prune(self.schedule.target_at(stage, 0, trainer.num_training_batches), trainer, pl_module)
        self.rewinder.restore(pl_module.model, stage)
        self._enforce_masks(pl_module)
        pl_module.set_stage(self.schedule.finetune_epochs, self.schedule.finetune_lr_scale)
        trainer.strategy.setup_optimizers(trainer)

    def _prune(self, target: float, trainer, pl_module, measure: bool = True) -> None:
        """Prune to `target`; with `measure`, take validation accuracy at once (`acc_before_ft`)."""
        ctx = ScoreContext(
            batches=trainer.datamodule.train_dataloader,
            loss=F.cross_entropy,
            generator=torch.Generator().manual_seed(self.run_info.get("seed", 0) * 1000 + self.stage),
        )
        self.masks = self.pruner.prune(pl_module.model, self.masks, target, ctx)
        rewrap_ddp(trainer)
        self._enforce_masks(pl_module)
        if measure:
            before = pl_module.evaluate(trainer.datamodule.val_dataloader())
            self.pending = {"acc_before_ft": before["acc"]}

    def _prune_on_schedule(self, trainer, pl_module) -> None:
        """Gradual schedules prune during the stage too (AGP); accuracy is taken once the target is reached."""
        step = trainer.global_step - self.stage_start_step
        target = self.schedule.target_at(self.stage, step, trainer.num_training_batches)
        if step and target is not None:
            self._prune(target, trainer, pl_module, measure=target == self.schedule.targets[self.stage - 1])

    def _finish_stage(self, trainer, pl_module) -> None:
        if any(r["stage"] == self.stage for r in self.rows):
            return
        val = pl_module.evaluate(trainer.datamodule.val_dataloader())
        test = pl_module.evaluate(trainer.datamodule.test_dataloader())
        params, nonzero = count_parameters(pl_module.model)
        dense = self.rows[0] if self.rows else None
        compute, costs = self.meter.measure(pl_module.model, trainer.datamodule.input_shape, params, nonzero, dense)
        row = {
            **self.run_info,
            "stage": self.stage,
            "target_sparsity": self.schedule.targets[self.stage - 1] if self.stage else 0.0,
            "sparsity": self._sparsity(pl_module.model),
            "params": params,
            "nonzero_params": nonzero,
            "empty_layers": sum(not bool(m.any()) for m in self.masks.values()) if self.masks is not None else 0,
            **compute,
            "acc_before_ft": self.pending.get("acc_before_ft", val["acc"]),
            "val_acc": val["acc"],
            "test_acc": test["acc"],
            **({"test_acc_top5": test["acc_top5"]} if "acc_top5" in test else {}),
            "epoch": trainer.current_epoch,
            "stage_time_s": time.perf_counter() - self._stage_started,
            "wall_time_s": time.perf_counter() - self._started,
        }
        self._stage_started = time.perf_counter()
        self.rows.append(row)
        self.pending = {}
        tracking.log_stage(trainer.loggers, row, trainer.global_step)
        dense_layers = {r["layer"]: r["params"] for r in self.layer_rows if r["stage"] == 0}
        layers = layer_rows(self.stage, costs, dense_layers)
        self.layer_rows += layers
        tracking.log_layer_table(trainer.loggers, self.stage, layers)
        if self.results_path is not None and trainer.is_global_zero:  # one writer under DDP
            tracking.write_results(self.rows, self.results_path)
            tracking.write_results(self.layer_rows, self.results_path.parent / "layer_sparsity.csv")
            if self.stage == 0:
                torch.save(pl_module.model.state_dict(), self.results_path.parent / "dense.pt")
            if self.schedule.save_masks and self.stage:
                self.stage_masks[self.stage] = {n: m.cpu() for n, m in self.masks.items()}
                torch.save(self.stage_masks, self.results_path.parent / "masks.pt")
        log.info(
            "stage %d/%d  target %.4f  reached %.4f  acc before ft %.4f -> after ft %.4f  (test %.4f)",
            self.stage, self.schedule.num_stages, row["target_sparsity"], row["sparsity"],
            row["acc_before_ft"], row["val_acc"], row["test_acc"],
        )

    def _sparsity(self, model) -> float:
        # Fraction of the dense model's prunable weights (`pruner.parameters`) removed or held at zero.
        if self.masks is None:
            return 0.0
        return pruned_fraction(self.pruner.parameters(model), self.masks, self.dense_total)

    def _enforce_masks(self, pl_module) -> None:
        params = self.pruner.parameters(pl_module.model)
        self.masks = {n: m.to(params[n].device) for n, m in self.masks.items()}
        # Multiplying by a mask of the weights' own dtype is about 6x faster than by a bool mask.
        self._pairs = [(params[n], self.masks[n].to(params[n].dtype)) for n in self.masks]
        apply_masks([p for p, _ in self._pairs], [m for _, m in self._pairs])
