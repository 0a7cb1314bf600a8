"""A run sets torch's threads from the `threads` setting and the jobs running beside it."""

import pytest
import torch

from prunelab.runs import threads
from tests.helpers import MICRO, cli, compose_config, run


def test_a_run_sets_torchs_threads(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    monkeypatch.setenv(threads.JOBS_VARIABLE, "64")
    run(compose_config(*MICRO, "store_dir=null"), tmp_path)
    assert calls == [1]  # 64 jobs at once get one thread each


def test_a_run_alone_keeps_torchs_default(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    monkeypatch.delenv(threads.JOBS_VARIABLE, raising=False)
    run(compose_config(*MICRO, "store_dir=null"), tmp_path)
    assert calls == []


@pytest.mark.slow  # two joblib workers each start Python, torch and Lightning: over a minute
def test_jobs_of_a_parallel_sweep_share_the_cores(tmp_path):
    proc = cli("-m", *MICRO, "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
               f"hydra.sweep.dir={tmp_path}/sweep", cwd=tmp_path, store=tmp_path / "store")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    cores = threads.available_cores()
    logs = "".join(p.read_text() for p in (tmp_path / "sweep").glob("*/*.log"))
    assert logs.count(f"threads: {max(1, cores // 2)} (threads=auto, 2 jobs at once on {cores} cores)") == 2, logs
