"""The Lightning adapter: each hook is a call or two into the `StageEngine`."""

from typing import Iterable, Sequence

import pytorch_lightning as pl
import torch
from torch import nn

from prunelab.training.ddp import rewrap_ddp
from prunelab.training.engine import StageEngine


def rebind_optimizers(optimizers: list[torch.optim.Optimizer], model: nn.Module) -> None:
    """Point `optimizers` (built over `model.parameters()`, in order) at the parameters that replaced them when
    channels were removed, keeping the LR schedules; a replaced parameter's momentum no longer fits and restarts."""
    params = list(model.parameters())
    for optimizer in optimizers:
        held = [p for group in optimizer.param_groups for p in group["params"]]
        for old, new in zip(held, params):
            if old is not new:
                optimizer.state.pop(old, None)
        replacements = iter(params)
        for group in optimizer.param_groups:
            group["params"] = [next(replacements) for _ in group["params"]]


class LightningHost:
    """The engine's `Host` over a Lightning Trainer and ClassificationModule."""

    def __init__(self, trainer: pl.Trainer, pl_module: pl.LightningModule):
        self.trainer, self.pl_module = trainer, pl_module

    @property
    def model(self) -> nn.Module:
        return self.pl_module.model

    @model.setter
    def model(self, model: nn.Module) -> None:
        self.pl_module.model = model

    @property
    def is_primary(self) -> bool:
        return self.trainer.is_global_zero

    @property
    def steps_per_epoch(self) -> int:
        return self.trainer.num_training_batches

    @property
    def input_shape(self) -> Sequence[int]:
        return self.trainer.datamodule.input_shape

    def evaluate(self, split: str) -> dict[str, float]:
        loader = {"val": self.trainer.datamodule.val_dataloader, "test": self.trainer.datamodule.test_dataloader}
        return self.pl_module.evaluate(loader[split]())

    def train_batches(self) -> Iterable:
        return self.trainer.datamodule.train_dataloader()

    def set_stage(self, epochs: int, lr_scale: float) -> None:
        self.pl_module.set_stage(epochs, lr_scale)

    def rebuild_optimizers(self) -> None:
        self.trainer.strategy.setup_optimizers(self.trainer)

    def model_changed(self) -> None:
        rewrap_ddp(self.trainer)
        rebind_optimizers(self.trainer.optimizers, self.model)

    def set_total_epochs(self, epochs: int) -> None:
        self.trainer.fit_loop.max_epochs = epochs


class PruningCallback(pl.Callback):
    """Runs `engine` inside one `Trainer.fit` of `engine.schedule.total_epochs` epochs.

    The engine's state (stage, masks, rows, snapshots, removed channels) is saved in every checkpoint.
    """

    def __init__(self, engine: StageEngine):
        self.engine = engine

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

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.engine.before_optimizer_step(LightningHost(trainer, pl_module), trainer.global_step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.engine.batch_end(LightningHost(trainer, pl_module), trainer.global_step)

    def on_train_epoch_end(self, trainer, pl_module):
        self.engine.epoch_end(pl_module.train_loss(), trainer.current_epoch, pl_module.model)

    def on_train_end(self, trainer, pl_module):
        self.engine.finish(LightningHost(trainer, pl_module), trainer.current_epoch, trainer.global_step)

    def on_fit_end(self, trainer, pl_module):  # resumed after the last epoch: Lightning skips on_train_end
        self.engine.finish(LightningHost(trainer, pl_module), trainer.current_epoch, trainer.global_step)

    def state_dict(self) -> dict:
        return self.engine.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.engine.load_state_dict(state)
