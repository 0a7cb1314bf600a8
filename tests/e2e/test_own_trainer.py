"""prunelab's pruning callback in a user's own Lightning project, without Hydra: their LightningModule (the
network itself, no prunelab methods), their datamodule and Trainer; results and W&B logging as in a run."""

import pandas as pd
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.loggers import WandbLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import prunelab
from prunelab.pruning import Magnitude, UnstructuredPruner
from prunelab.training.schedule import Schedule
from tests.helpers import wandb_run_dirs, wandb_run_file


class Classifier(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)


class Prototypes(pl.LightningDataModule):
    """One random 8x8 prototype per class plus noise."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        centres = torch.randn(10, 1, 8, 8, generator=g)
        self.y = torch.randint(10, (900,), generator=g)
        self.x = centres[self.y] + 0.5 * torch.randn(900, 1, 8, 8, generator=g)

    def _loader(self, part: slice, shuffle: bool = False):
        return DataLoader(TensorDataset(self.x[part], self.y[part]), batch_size=100, shuffle=shuffle)

    def train_dataloader(self):
        return self._loader(slice(0, 700), shuffle=True)

    def val_dataloader(self):
        return self._loader(slice(700, 800))

    def test_dataloader(self):
        return self._loader(slice(800, 900))


@pytest.mark.parametrize("method", ["magnitude", "l1_filter"])
def test_the_callback_prunes_in_a_users_own_trainer(method, tmp_path):
    pl.seed_everything(0)
    pruner = UnstructuredPruner(Magnitude()) if method == "magnitude" else prunelab.pruner("l1_filter")
    schedule = Schedule(targets=[0.5, 0.8], finetune_epochs=1, pretrain_epochs=2)
    logger = WandbLogger(save_dir=str(tmp_path), offline=True)
    callback = prunelab.pruning_callback(pruner, schedule, name=method, folder=tmp_path / "run", loggers=[logger])
    module = Classifier()
    trainer = pl.Trainer(max_epochs=schedule.total_epochs, callbacks=[callback], logger=logger, accelerator="cpu",
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, datamodule=Prototypes())
    logger.experiment.finish()

    rows = pd.read_csv(tmp_path / "run" / "results.csv")
    assert rows["stage"].tolist() == [0, 1, 2] and (rows["method"] == method).all()
    assert rows["test_acc"].iloc[0] > 0.9 and rows["weight_sparsity"].is_monotonic_increasing
    hidden = module.net[1].weight
    if method == "magnitude":
        assert rows["weight_sparsity"].iloc[-1] == pytest.approx(0.8, abs=1e-3)
        assert float((hidden == 0).float().mean()) > 0.79
    else:
        assert hidden.shape[0] < 48 and rows["params"].iloc[-1] < rows["params"].iloc[0]
    history = wandb_run_file(wandb_run_dirs(tmp_path)[0])["history"]
    logged = [h["stage/test_acc"] for h in history if "stage/test_acc" in h]
    assert logged == pytest.approx(rows["test_acc"].tolist())
