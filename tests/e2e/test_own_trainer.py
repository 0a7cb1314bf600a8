"""prunelab's pruning callback in a user's own Lightning project, without Hydra: their LightningModule (the
network itself, no prunelab methods), their datamodule and Trainer; results, W&B's layout and the per-stage
lines as in a run."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import wandb
from pytorch_lightning.loggers import WandbLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import prunelab
from prunelab.pruning import Magnitude, UnstructuredPruner
from prunelab.summary import run_summary
from prunelab.tasks import CLASSIFICATION
from prunelab.training.schedule import Schedule
from tests.helpers import ROOT, wandb_run_dirs, wandb_run_file


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


def train(method: str, folder: Path) -> Classifier:
    """The user's script: their module, data and Trainer with the callback and a WandbLogger (offline) in `folder`."""
    pl.seed_everything(0)
    pruner = UnstructuredPruner(Magnitude()) if method == "magnitude" else prunelab.pruner("l1_filter")
    schedule = Schedule(targets=[0.5, 0.8], finetune_epochs=1, pretrain_epochs=2)
    logger = WandbLogger(save_dir=str(folder), offline=True)
    callback = prunelab.pruning_callback(pruner, schedule, name=method, folder=folder / "run", loggers=[logger])
    module = Classifier()
    trainer = pl.Trainer(max_epochs=schedule.total_epochs, callbacks=[callback], logger=logger, accelerator="cpu",
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, datamodule=Prototypes())
    logger.experiment.finish()
    return module


@pytest.mark.parametrize("method", ["magnitude", "l1_filter"])
def test_the_callback_prunes_in_a_users_own_trainer(method, tmp_path):
    module = train(method, tmp_path)
    wandb.teardown()  # waits until W&B has written everything down (finish alone does not)
    rows = pd.read_csv(tmp_path / "run" / "results.csv")
    assert rows["stage"].tolist() == [0, 1, 2] and (rows["method"] == method).all()
    assert rows["test_acc"].iloc[0] > 0.9 and rows["weight_sparsity"].is_monotonic_increasing
    hidden = module.net[1].weight
    if method == "magnitude":
        assert rows["weight_sparsity"].iloc[-1] == pytest.approx(0.8, abs=1e-3)
        assert float((hidden == 0).float().mean()) > 0.79
    else:
        assert hidden.shape[0] < 48 and rows["params"].iloc[-1] < rows["params"].iloc[0]
    written = wandb_run_file(wandb_run_dirs(tmp_path)[0])
    logged = [h["stage/test_acc"] for h in written["history"] if "stage/test_acc" in h]
    assert logged == pytest.approx(rows["test_acc"].tolist())
    assert_the_commands_wandb_layout(written, rows)


def assert_the_commands_wandb_layout(written: dict, rows: pd.DataFrame) -> None:
    """Stage metrics charted against the parameters pruned, the summary scores, the curve table and the final
    per-layer sparsity, as a prunelab run logs them (tests/e2e/test_wandb.py)."""
    axes = {m.name: m.step_metric for m in written["metrics"] if m.name.startswith("stage/")}
    assert axes["stage/test_acc"] == axes["stage/weight_sparsity"] == "stage/param_sparsity"
    scores = run_summary(rows, CLASSIFICATION)
    assert {k: written["summary"][f"summary/{k}"] for k in scores} == pytest.approx(scores)
    assert any(k.startswith("layer_sparsity/") for k in written["summary"])
    (curve,) = [h for h in written["history"] if "curve/table/path" in h]
    assert curve["curve/table/nrows"] == len(rows)


def test_the_callback_prints_each_stage_as_the_command_does(tmp_path):
    """A script that configures no logging, as a user's own training script: each stage's line on stderr."""
    script = ("from tests.e2e.test_own_trainer import train; "
              f"train('magnitude', __import__('pathlib').Path({str(tmp_path)!r}))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if re.match(r"prunelab: stage \d/2 ", line)]
    assert [line.split()[2] for line in lines] == ["0/2", "1/2", "2/2"], done.stderr[-3000:]
    assert "target 0.8000" in lines[-1] and "acc before ft" in lines[-1]
