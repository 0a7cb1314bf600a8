"""A run loads its data while its logger starts, after every check: a bad config starts no W&B run; a run that
fails while its data loads still finishes the logger."""

import pytest
import wandb

from prunelab.data.module import DataModule
from prunelab.errors import ConfigError
from tests.helpers import TINY, compose_config, run, wandb_run_dirs, wandb_run_file

WANDB = [*TINY, "logger=wandb", "logger.mode=offline"]


def test_a_run_failing_its_checks_starts_no_wandb_run(tmp_path):
    with pytest.raises(ConfigError, match="dataset.val_fraction"):
        run(compose_config(*WANDB, "dataset.val_fraction=1.5"), tmp_path)
    assert wandb.run is None and wandb_run_dirs(tmp_path) == []


def test_a_run_failing_while_its_data_loads_finishes_its_wandb_run_as_failed(tmp_path, monkeypatch):
    def broken(self, stage=None):
        raise OSError("the disk went away")

    monkeypatch.setattr(DataModule, "setup", broken)
    with pytest.raises(OSError, match="the disk went away"):
        run(compose_config(*WANDB), tmp_path)
    assert wandb.run is None
    wandb.teardown()
    (run_dir,) = wandb_run_dirs(tmp_path)
    assert wandb_run_file(run_dir)["exit"].exit_code == 1
