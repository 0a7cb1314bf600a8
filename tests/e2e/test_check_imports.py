"""A bad setting whose check needs no data is answered before the imports it does not need: the command, run
under Python's import profiler, prints the one error line naming the setting without having loaded Lightning,
torchvision, transformers, W&B, matplotlib, pandas or torch._dynamo; a bad schedule answers before torch loads.
With the schema cache warm (any earlier check of the same code), a bad trainer or dataset setting answers
without torch at all (benchmarks/startup.py times these answers)."""

import pytest

from prunelab.runs import schemas
from tests.helpers import cli, compose_config

NOT_NEEDED = ("pytorch_lightning", "lightning_fabric", "torchvision", "transformers", "wandb", "matplotlib", "pandas",
              "torch._dynamo")


def imported(stderr: str) -> set[str]:
    """The modules a process imported, from the lines `python -X importtime` writes to its stderr."""
    return {line.rpartition("|")[2].strip() for line in stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("override, setting, also_not_needed", [
    ("schedule.targets=[1.5]", "schedule.targets", ("torch",)),
    ("+pruning.criterion.power=2", "pruning.criterion.power", ()),
    ("pruning.scope=bogus", "pruning.scope", ()),
    ("optimizer.lr=-0.1", "optimizer.lr", ()),
], ids=["schedule", "unknown_key", "pruner", "optimizer"])
def test_a_bad_setting_is_answered_before_the_imports_its_check_does_not_need(override, setting, also_not_needed,
                                                                             tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # cold: the first command after an install
    answers_importing_none_of(override, setting, NOT_NEEDED + also_not_needed, tmp_path, monkeypatch)


@pytest.mark.parametrize("override, setting", [
    ("trainer.precision=float7", "trainer.precision"),
    ("dataset.batch_size=0", "dataset.batch_size"),
    ("pruning.scope=bogus", "pruning.scope"),
], ids=["trainer", "dataset", "pruner"])
def test_with_the_schema_cache_warm_a_bad_setting_of_a_node_answers_without_torch(override, setting, tmp_path,
                                                                                  monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    schemas.check(compose_config())  # reads every node's schema once, as any earlier command does
    answers_importing_none_of(override, setting, NOT_NEEDED + ("torch",), tmp_path, monkeypatch)


def answers_importing_none_of(override: str, setting: str, modules: tuple[str, ...], tmp_path, monkeypatch) -> None:
    """The command answers `override` with one error line naming `setting`, without having imported `modules`."""
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")
    proc = cli(override, f"hydra.run.dir={tmp_path / 'job'}", cwd=tmp_path, store=tmp_path / "store")
    _, err = proc.communicate(timeout=300)
    lines = [line for line in err.splitlines() if not line.startswith("import time:")]
    assert proc.returncode == 2 and len(lines) == 1, err[-3000:]
    assert lines[0].startswith(f"prunelab: error: {setting}: ") and "Fix: " in lines[0], lines[0]
    assert imported(err).isdisjoint(modules), imported(err) & set(modules)
