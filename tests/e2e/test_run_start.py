"""A run builds its data and model while its logger starts; a run that fails there still finishes the logger."""

import pytest
import wandb

from prunelab.errors import ConfigError
from tests.helpers import TINY, compose_config, run, wandb_run_dirs, wandb_run_file


def test_a_run_failing_while_it_is_built_finishes_its_wandb_run_as_failed(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    with pytest.raises(ConfigError, match="dataset.val_fraction"):
        run(compose_config(*TINY, "logger=wandb", "logger.mode=offline", "dataset.val_fraction=1.5"), tmp_path)
    assert wandb.run is None
    wandb.teardown()
    (run_dir,) = wandb_run_dirs(tmp_path)
    assert wandb_run_file(run_dir)["exit"].exit_code == 1
