"""The Lightning adapter: each hook is a call or two into the `StageEngine`.

It works in any Lightning project with a datamodule. What it asks of the LightningModule, with the default
when the module lacks it: `model`, the network to prune (the module itself); `evaluate(batches)` -> {"acc":
...} (top-1 accuracy over the datamodule's val/test loaders); `set_stage(epochs, lr_scale)`, the length of
the stage `configure_optimizers` builds for (ignored); `train_loss()` for the divergence check (the last
training step's loss). The datamodule's `input_shape` defaults to a training batch's; its
`calibration_samples(n, seed)`, where it has one, gives activation-aware pruners their calibration inputs.
"""

from typing import Callable, Iterable, Sequence

import pytorch_lightning as pl
import torch
from torch import nn

from prunelab.errors import ConfigError
from prunelab.modes import eval_mode
from prunelab.seeds import batch_seed
from prunelab.training.ddp import rewrap_ddp
from prunelab.training.engine import StageEngine


def rebind_optimizers(optimizers: list[torch.optim.Optimizer], model: nn.Module) -> None:
    """Point `optimizers` (built over `model.parameters()`, in order) at the parameters that replaced them when
    channels were removed, keeping the LR schedules; a replaced parameter's momentum no longer fits and restarts."""
    params = list(model.parameters())
    for optimizer in optimizers:
        held = [p for group in optimizer.param_groups for p in group["params"]]
        if len(held) != len(params):  # LoRA adapters merged away: the next stage builds its optimizer afresh
            continue
        for old, new in zip(held, params):
            if old is not new:
                optimizer.state.pop(old, None)
        replacements = iter(params)
        for group in optimizer.param_groups:
            group["params"] = [next(replacements) for _ in group["params"]]


@torch.no_grad()
def top1_accuracy(model: nn.Module, batches: Iterable) -> dict[str, float]:
    """{"acc": the fraction of `(x, y)` batches' labels that `model`'s largest logit names}, in eval mode."""
    device = next(model.parameters()).device
    correct = total = 0
    with eval_mode(model):
        for x, y in batches:
            correct += int((model(x.to(device)).argmax(-1) == y.to(device)).sum())
            total += len(y)
    return {"acc": correct / max(total, 1)}


class LightningHost:
    """The engine's `Host` over a Lightning Trainer, its datamodule and a LightningModule (see the module's doc)."""

    def __init__(self, trainer: pl.Trainer, pl_module: pl.LightningModule):
        self.trainer, self.pl_module = trainer, pl_module

    @property
    def model(self) -> nn.Module:
        return getattr(self.pl_module, "model", self.pl_module)

    @model.setter
    def model(self, model: nn.Module) -> None:
        if hasattr(self.pl_module, "model"):
            self.pl_module.model = model
        elif model is not self.pl_module:
            raise ConfigError("model", "a schedule that restores the dense network after channels were removed "
                              "replaces it, and this LightningModule is the network itself",
                              "keep the network in the module's `model` attribute")

    @property
    def is_primary(self) -> bool:
        return self.trainer.is_global_zero

    @property
    def steps_per_epoch(self) -> int:
        return self.trainer.num_training_batches

    @property
    def input_shape(self) -> Sequence[int]:
        shape = getattr(self.trainer.datamodule, "input_shape", None)
        return shape if shape is not None else tuple(next(iter(self.train_batches()))[0].shape[1:])

    @property
    def calibration(self) -> Callable[[int, int], torch.Tensor] | None:
        return getattr(self.trainer.datamodule, "calibration_samples", None)

    def evaluate(self, split: str) -> dict[str, float]:
        loader = {"val": self.trainer.datamodule.val_dataloader, "test": self.trainer.datamodule.test_dataloader}
        own = getattr(self.pl_module, "evaluate", None)
        return own(loader[split]()) if own is not None else top1_accuracy(self.model, loader[split]())

    def train_batches(self) -> Iterable:
        return self.trainer.datamodule.train_dataloader()

    def set_stage(self, epochs: int, lr_scale: float) -> None:
        if hasattr(self.pl_module, "set_stage"):
            self.pl_module.set_stage(epochs, lr_scale)

    def rebuild_optimizers(self) -> None:
        self.trainer.strategy.setup_optimizers(self.trainer)

    def model_changed(self) -> None:
        if hasattr(self.pl_module, "model"):
            self.pl_module.model = self.pl_module.model  # the module puts new layers in its memory format
        rewrap_ddp(self.trainer)
        rebind_optimizers(self.trainer.optimizers, self.model)

    def set_total_epochs(self, epochs: int) -> None:
        self.trainer.fit_loop.max_epochs = epochs


class PruningCallback(pl.Callback):
    """Runs `engine` inside one `Trainer.fit` of `engine.schedule.total_epochs` epochs.

    The engine's state (stage, masks, rows, snapshots, removed channels) is saved in every checkpoint.
    `finish=False` leaves the last stage unfinished when training ends (no row): for a training whose
    checkpoint others continue from (the store's shared dense model).
    """

    def __init__(self, engine: StageEngine, finish: bool = True):
        self.engine, self.finishes = engine, finish
        self._last_loss = torch.zeros(())

    @classmethod
    def saved_state(cls, checkpoint: dict) -> dict | None:
        """The engine's state in a loaded Lightning checkpoint (None if it was written without this callback)."""
        return checkpoint.get("callbacks", {}).get(cls.__qualname__)  # Lightning's default `state_key`

    def setup(self, trainer, pl_module, stage):
        self.engine.configure(LightningHost(trainer, pl_module))

    def on_fit_start(self, trainer, pl_module):
        trainer.datamodule.setup("test")
        self.engine.start(LightningHost(trainer, pl_module))

    def on_train_epoch_start(self, trainer, pl_module):
        pl.seed_everything(self.engine.epoch_seed(trainer.current_epoch), verbose=False)
        self.engine.epoch_start(LightningHost(trainer, pl_module), trainer.current_epoch, trainer.global_step)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        torch.manual_seed(batch_seed(self.engine.seed, trainer.current_epoch, batch_idx))

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.engine.before_optimizer_step(LightningHost(trainer, pl_module), trainer.global_step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if not hasattr(pl_module, "train_loss"):
            self._last_loss = (outputs["loss"] if isinstance(outputs, dict) else outputs).detach()
        self.engine.batch_end(LightningHost(trainer, pl_module), trainer.global_step)

    def on_train_epoch_end(self, trainer, pl_module):
        loss = pl_module.train_loss() if hasattr(pl_module, "train_loss") else self._last_loss
        self.engine.epoch_end(loss, trainer.current_epoch, LightningHost(trainer, pl_module).model)

    def on_train_end(self, trainer, pl_module):
        if self.finishes:
            self.engine.finish(LightningHost(trainer, pl_module), trainer.current_epoch, trainer.global_step)

    def on_fit_end(self, trainer, pl_module):  # resumed after the last epoch: Lightning skips on_train_end
        if self.finishes:
            self.engine.finish(LightningHost(trainer, pl_module), trainer.current_epoch, trainer.global_step)

    def state_dict(self) -> dict:
        return self.engine.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.engine.load_state_dict(state)
