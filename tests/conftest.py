"""Shared fixtures: the real config, composed by Hydra and shrunk to a few seconds."""

import os
import subprocess
import sys
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

# Small learnable data (4 training batches of 64) for tests of how runs work rather than how well.
SMALL = ["dataset=synthetic", "dataset.num_samples=256", "dataset.num_test=64"]


def options(group: str) -> list[str]:
    """Every option of a config group, from its folder: the group is the registry."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def cli(*args: str, cwd, store=None, **popen) -> subprocess.Popen:
    """Start `python -m prunelab *args` on this checkout (tests.* importable), with its own store."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    if store is not None:
        env["PRUNELAB_STORE"] = str(store)
    return subprocess.Popen([sys.executable, "-m", "prunelab", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def compose_config(*overrides: str):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.fixture(scope="session", autouse=True)
def _store(tmp_path_factory):
    """One store for the session: tests share dense models as a sweep does (tests of the store give their own)."""
    os.environ["PRUNELAB_STORE"] = str(tmp_path_factory.mktemp("store"))


@pytest.fixture(autouse=True)
def _offline_wandb(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    os.environ.setdefault("PRUNELAB_DATA", str(SHARED_DATA))
