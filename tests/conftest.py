"""Shared fixtures: the real config, composed by Hydra and shrunk to a few seconds."""

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SHARED_DATA = ROOT.parent / "shared" / "data"

# A run of a few seconds: 2 dense epochs, 2 targets of 1 fine-tune epoch each.
TINY = [
    "schedule.pretrain_epochs=2",
    "schedule.finetune_epochs=1",
    "schedule.targets=[0.5,0.8]",
    "trainer.enable_progress_bar=false",
    "logger=none",
    "save_model=false",
]


def options(group: str) -> list[str]:
    """Every option of a config group, from its folder: the group is the registry."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def compose_config(*overrides: str):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.fixture(autouse=True)
def _offline_wandb(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    os.environ.setdefault("PRUNELAB_DATA", str(SHARED_DATA))
