"""A bad setting whose check needs no data is answered before the imports it does not need: the command, run
under Python's import profiler, prints the one error line naming the setting without having loaded Lightning,
torchvision, transformers, W&B, matplotlib, pandas or torch._dynamo; a bad schedule answers before torch loads
(benchmarks/startup.py times these answers)."""

import pytest

from tests.helpers import cli

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
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")
    proc = cli(override, f"hydra.run.dir={tmp_path / 'job'}", cwd=tmp_path, store=tmp_path / "store")
    _, err = proc.communicate(timeout=300)
    lines = [line for line in err.splitlines() if not line.startswith("import time:")]
    assert proc.returncode == 2 and len(lines) == 1, err[-3000:]
    assert lines[0].startswith(f"prunelab: error: {setting}: ") and "Fix: " in lines[0], lines[0]
    assert imported(err).isdisjoint(NOT_NEEDED + also_not_needed), imported(err) & {*NOT_NEEDED, *also_not_needed}
