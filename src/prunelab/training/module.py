"""The LightningModules' shared base (optimizer and LR-schedule factories from config, stages) and classification's."""

from typing import Annotated, Callable, Iterable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from annotated_types import Ge, Lt
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from prunelab.errors import ConfigError
from prunelab.modes import eval_mode


def _accuracies(num_classes: int) -> nn.ModuleDict:
    metrics = {"acc": MulticlassAccuracy(num_classes, average="micro")}
    if num_classes >= 10:
        metrics["acc_top5"] = MulticlassAccuracy(num_classes, top_k=5, average="micro")
    return nn.ModuleDict(metrics)


class StageModule(pl.LightningModule):
    """What every task's LightningModule shares: the network in `model`, an optimizer and LR schedule built
    afresh for every stage from factories, the epoch's mean training loss.

    `optimizer(params)` and `scheduler(optimizer, epochs=...)` (an LR schedule of `prunelab.training.lr`)
    are factories; the optimizer and LR schedule are built afresh for every stage (see `set_stage`).
    `channels_last` holds every model assigned to `model` (structural surgery assigns new ones) in
    channels_last memory format. A subclass defines `loss(batch)` and `evaluate(batches)`.
    """

    def __init__(self, model: nn.Module, optimizer: Callable, scheduler: Callable, channels_last: bool = False):
        super().__init__()
        self.channels_last = channels_last
        self.model = model
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.stage_epochs, self.lr_scale = 1, 1.0

    def __setattr__(self, name: str, value) -> None:
        # Lightning sets `_current_fx_name` around every hook call, ~50 times a step; nn.Module's
        # __setattr__ checks cost ~10% of a small model's step, and a hook name is never a parameter.
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        elif name == "model":
            super().__setattr__(name, value.to(memory_format=torch.channels_last) if self.channels_last else value)
        else:
            super().__setattr__(name, value)

    def set_stage(self, epochs: int, lr_scale: float = 1.0) -> None:
        """Length (epochs) and LR scale of the stage that `configure_optimizers` builds for."""
        self.stage_epochs, self.lr_scale = epochs, lr_scale

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["stage_settings"] = {"epochs": self.stage_epochs, "lr_scale": self.lr_scale}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # Restored before the optimizer is rebuilt, so a resumed stage gets its own LR schedule.
        self.set_stage(**checkpoint["stage_settings"])

    def on_train_epoch_start(self) -> None:
        self._loss_sum, self._samples = torch.zeros((), device=self.device), 0

    def loss(self, batch) -> tuple[torch.Tensor, int]:
        """The mean training loss of `batch` and the number of samples it is a mean over."""
        raise NotImplementedError

    def training_step(self, batch, batch_idx):
        loss, samples = self.loss(batch)
        # Summed here and logged once per epoch: a `self.log` call costs about 1 ms, a small model's whole step.
        self._loss_sum += loss.detach() * samples
        self._samples += samples
        return loss

    def train_loss(self) -> torch.Tensor:
        """Mean training loss of the epoch so far, per sample, averaged over ranks."""
        return self.trainer.strategy.reduce(self._loss_sum / max(self._samples, 1), reduce_op="mean")

    def on_train_epoch_end(self) -> None:
        self.log("train/loss", self.train_loss(), prog_bar=True)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.model.parameters())
        for group in optimizer.param_groups:
            group["lr"] *= self.lr_scale
        scheduler = self.scheduler_factory(optimizer, epochs=self.stage_epochs)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}


# The weight of the uniform distribution in the training targets (Szegedy et al. 2016); 0: none.
LabelSmoothing = Annotated[float, Ge(0), Lt(1)]


class ClassificationModule(StageModule):
    """Cross-entropy training of `model`, with targets smoothed by `label_smoothing` (validation loss unsmoothed);
    top-1 (and top-5 for >= 10 classes) accuracy.

    The optimizer and LR schedule are those of `StageModule`. `channels_last` also puts every 4-D batch it
    trains or evaluates on in channels_last memory format.
    """

    def __init__(self, model: nn.Module, optimizer: Callable, scheduler: Callable, num_classes: int,
                 channels_last: bool = False, label_smoothing: LabelSmoothing = 0.0):
        super().__init__(model, optimizer, scheduler, channels_last)
        self.val_metrics = _accuracies(num_classes)
        self.num_classes, self.label_smoothing = num_classes, label_smoothing

    @classmethod
    def for_datamodule(cls, model: nn.Module, optimizer: Callable, scheduler: Callable, datamodule,
                       channels_last: bool = False, label_smoothing: LabelSmoothing = 0.0) -> "ClassificationModule":
        """The module for `datamodule`'s classes (the task's factory; a run calls it)."""
        classes = getattr(datamodule, "num_classes", None)
        if classes is None:
            raise ConfigError("task", f"classification needs labelled classes, and {type(datamodule).__name__} has "
                              "none", "use the task of the dataset: e.g. task=language_modeling with dataset=text")
        return cls(model, optimizer, scheduler, classes, channels_last, label_smoothing)

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """`x`, channels_last if the module is and `x` is 4-D (images)."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.inputs(x))

    def loss(self, batch) -> tuple[torch.Tensor, int]:
        x, y = batch
        return F.cross_entropy(self.forward(x), y, label_smoothing=self.label_smoothing), len(y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.forward(x)
        self.log("val/loss", F.cross_entropy(logits, y), prog_bar=True)
        for name, metric in self.val_metrics.items():
            metric(logits, y)
            self.log(f"val/{name}", metric, prog_bar=name == "acc")

    @torch.no_grad()
    def evaluate(self, batches: Iterable) -> dict[str, float]:
        """Accuracies of the current weights over `batches`, outside any Trainer loop."""
        metrics = _accuracies(self.num_classes).to(self.device)
        with eval_mode(self):
            for x, y in batches:
                logits = self.forward(x.to(self.device))
                for metric in metrics.values():
                    metric.update(logits, y.to(self.device))
        return {name: float(metric.compute()) for name, metric in metrics.items()}
