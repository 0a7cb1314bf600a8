"""Typed config checks: every option of every checked group passes; a wrong type, an unknown key, a
missing or out-of-range value gets one ConfigError naming the setting, before any work starts."""


import pytest

from tests.helpers import TINY, cli


@pytest.mark.slow  # starts the command or a multirun: the slow suite (pytest -m slow) runs it
def test_the_command_prints_the_one_message_and_no_traceback(tmp_path):
    proc = cli(*TINY, "+schedule.warmup_epochs=3", "hydra.run.dir=.", cwd=tmp_path, store=tmp_path / "store")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and "Traceback" not in err
    assert "prunelab: error: schedule.warmup_epochs: is not a setting of prunelab.training.schedule.Schedule" in err
    assert not (tmp_path / "store").exists()
