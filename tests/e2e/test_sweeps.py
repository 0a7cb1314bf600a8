"""Sweeps through the real command: parallel jobs share one dense model, a rerun skips what is done,
a failing job costs only itself and the sweep ends non-zero, and every launcher and sweeper config runs."""

import os
import subprocess
from pathlib import Path

import pytest

from prunelab.paths import RunPaths
from prunelab.runs.folder import read_status
from prunelab.runs.spec import from_config
from tests.helpers import MICRO, cli, compose_config


def sweep(tmp_path, name: str, *args: str):
    """Run `prunelab -m *args` into tmp_path/name with the store tmp_path/store; (process, job statuses)."""
    proc = cli("-m", *MICRO, *args, f"hydra.sweep.dir={tmp_path / name}", cwd=tmp_path, store=tmp_path / "store")
    out, err = proc.communicate(timeout=900)
    jobs = sorted(p.parent for p in (tmp_path / name).glob("*/.hydra"))
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), [read_status(RunPaths(j)) for j in jobs]


def dense_trainings(tmp_path) -> int:
    log = tmp_path / "store" / "dense" / "trained.log"
    return len(log.read_text().splitlines()) if log.is_file() else 0


def test_the_run_folder_depends_on_exactly_the_settings_that_determine_results():
    def run_dir(*overrides):
        return from_config(compose_config(*overrides), ".").paths.root

    base = run_dir()
    assert base.parent == Path(os.environ["PRUNELAB_STORE"]) / "runs"
    for same in ["logger=csv", "trainer.enable_progress_bar=false", "cache=false", "+optimizer.dampening=0"]:
        assert run_dir(same) == base, same
    for other in ["pruning=random", "seed=1", "schedule.targets=[0.5]", "optimizer.lr=0.1", "model=lenet_300_100"]:
        assert run_dir(other) != base, other


@pytest.mark.slow  # starts the command or a multirun: the slow suite (pytest -m slow) runs it
def test_parallel_jobs_share_one_dense_model_and_a_rerun_skips_all_four(tmp_path):
    grid = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "pruning=magnitude,random", "schedule=iterative,oneshot"]
    first, statuses = sweep(tmp_path, "first", *grid)
    assert first.returncode == 0, first.stderr[-3000:]
    assert [s["status"] for s in statuses] == ["done"] * 4 and not any(s["skipped"] for s in statuses)
    assert dense_trainings(tmp_path) == 1

    again, statuses = sweep(tmp_path, "again", *grid)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "sweep of 4 runs: 0 ran, 4 skipped, 0 failed" in again.stderr
    assert [s.get("skipped") for s in statuses] == [True] * 4 and dense_trainings(tmp_path) == 1
    for job in (tmp_path / "again").glob("*/.hydra"):  # each job folder holds the results of the finished run
        first_job = tmp_path / "first" / job.parent.name
        assert (job.parent / "results.csv").read_text() == (first_job / "results.csv").read_text()


@pytest.mark.slow  # a multirun or CLI subprocesses: the slow suite (pytest -m slow) runs it
def test_failing_jobs_cost_only_themselves_and_the_sweep_reports_them_and_exits_non_zero(tmp_path):
    grid = ["pruning._target_=prunelab.pruning.UnstructuredPruner,tests.helpers.NaNPruner",
            "schedule.targets=[0.5],[1.5]"]
    first, statuses = sweep(tmp_path, "first", *grid)
    assert first.returncode == 1
    assert [s["status"] for s in statuses] == ["done", "failed", "failed", "failed"]  # the first setting varies fastest
    assert "sweep of 4 runs: 1 ran, 0 skipped, 3 failed" in first.stderr
    diverged = statuses[1]
    assert (diverged["stage"], diverged["sparsity"]) == (1, pytest.approx(0.5, abs=1e-3))
    assert "at stage 1, sparsity 0.5" in first.stderr and "schedule.targets" in statuses[2]["error"]
    assert "Traceback" not in first.stderr

    again, statuses = sweep(tmp_path, "again", *grid)
    assert again.returncode == 1 and "sweep of 4 runs: 0 ran, 1 skipped, 3 failed" in again.stderr
    assert [s.get("skipped", False) for s in statuses] == [True, False, False, False]


@pytest.mark.slow  # a multirun or CLI subprocesses: the slow suite (pytest -m slow) runs it
def test_a_submitit_local_multirun_completes(tmp_path):
    proc, statuses = sweep(tmp_path, "sweep", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=15",
                           "pruning=magnitude,random")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [s["status"] for s in statuses] == ["done", "done"] and dense_trainings(tmp_path) == 1


@pytest.mark.slow  # a multirun or CLI subprocesses: the slow suite (pytest -m slow) runs it
def test_the_optuna_sweeper_tunes_fine_tuning_and_reports_the_best_trial(tmp_path):
    proc, statuses = sweep(tmp_path, "sweep", "hydra/sweeper=finetune", "hydra.sweeper.n_trials=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(statuses) == 2 and {s["status"] for s in statuses} == {"done"}
    best = (tmp_path / "sweep" / "optimization_results.yaml").read_text()
    assert f"best_value: {max(s['objective'] for s in statuses)}" in best
    assert dense_trainings(tmp_path) == 1

