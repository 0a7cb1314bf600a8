"""Fixtures for every test: one dense-model store per session, W&B offline into each test's folder."""

import os
from pathlib import Path

import pytest

from tests.helpers import SHARED_DATA

E2E = Path(__file__).parent / "e2e"


def pytest_collection_modifyitems(items):
    """Tests under tests/e2e train through Lightning or the command: marked `e2e` (`-m "not e2e"`: unit only)."""
    for item in items:
        if E2E in Path(item.fspath).parents:
            item.add_marker(pytest.mark.e2e)


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
