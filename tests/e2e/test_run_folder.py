"""A run folder has one writer: two identical sweeps started at once run every run once, with the curve of a
run made alone. Every run records how it was made (protocol.json); a finished run made by other code than
now is skipped with a warning that names both, and `rerun=true` runs it again."""

import logging
from importlib import metadata

import pandas as pd
import pytest

from prunelab.config import build
from prunelab.paths import RunPaths
from prunelab.runs import protocol
from prunelab.runs.folder import read_protocol, read_status
from prunelab.runs.job import execute
from tests.helpers import MICRO, TIMES, cli, compose_config, run

GRID = ["pruning=magnitude,random"]


@pytest.mark.slow  # a multirun or CLI subprocesses: the slow suite (pytest -m slow) runs it
def test_two_identical_sweeps_started_at_once_run_every_run_once(tmp_path):
    store = tmp_path / "store"
    procs = {name: cli("-m", *MICRO, *GRID, f"hydra.sweep.dir={tmp_path / name}", cwd=tmp_path, store=store)
             for name in ("a", "b")}
    for proc in procs.values():
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
    jobs = {name: sorted(p.parent for p in (tmp_path / name).glob("*/.hydra")) for name in procs}
    statuses = [read_status(RunPaths(job)) for sweep in jobs.values() for job in sweep]
    assert len(statuses) == 4 and {s["status"] for s in statuses} == {"done"}
    assert sum(not s["skipped"] for s in statuses) == 2, "each run must be trained by one sweep only"
    assert len((store / "dense" / "trained.log").read_text().splitlines()) == 1
    for method, job_a, job_b in zip(["magnitude", "random"], jobs["a"], jobs["b"]):
        alone = run(compose_config(*MICRO, f"pruning={method}"), tmp_path / f"alone-{method}").results
        for job in (job_a, job_b):
            curve = pd.read_csv(job / "results.csv")
            pd.testing.assert_frame_equal(curve.drop(columns=TIMES), alone.drop(columns=TIMES), check_dtype=False)


def test_a_run_records_how_it_was_made(tmp_path):
    cfg = compose_config(*MICRO, f"store_dir={tmp_path / 'store'}")
    execute(cfg, tmp_path / "job")
    (folder,) = (tmp_path / "store" / "runs").glob("*")
    made = read_protocol(RunPaths(folder))
    assert made["code"] == protocol.code_identity() and made["code"]["prunelab"]
    assert made["libraries"] == {lib: metadata.version(lib) for lib in protocol.LIBRARIES}
    assert made["device"] == "cpu" and made["data"] == build(cfg.dataset).fingerprint()
    assert made["budget"] == [
        {"stage": 0, "epochs": 1, "lr": 0.05, "lr_schedule": "prunelab.training.lr.cosine"},
        {"stage": 1, "epochs": 1, "lr": 0.05, "lr_schedule": "prunelab.training.lr.cosine"},
    ]
    data = build(cfg.dataset)
    data.setup("fit")
    assert made["samples"] == {"val": len(data.val_dataloader().dataset), "test": 64}  # SMALL's num_test


def test_a_finished_run_made_by_other_code_is_skipped_with_a_warning_and_rerun_runs_it_again(
        tmp_path, monkeypatch, caplog):
    config = [*MICRO, f"store_dir={tmp_path / 'store'}"]
    execute(compose_config(*config), tmp_path / "first")
    then = protocol.code_identity()
    fixed = {**then, "commit": "f" * 40, "dirty": False}
    monkeypatch.setattr(protocol, "code_identity", lambda: fixed)

    with caplog.at_level(logging.WARNING):
        execute(compose_config(*config), tmp_path / "second")
    assert read_status(RunPaths(tmp_path / "second"))["skipped"] is True
    assert "and the code is now commit ffffffffffff; they may be stale: set rerun=true" in caplog.text
    assert (f"commit {then['commit'][:12]}" if then["commit"] else "no recorded commit") in caplog.text

    execute(compose_config(*config, "rerun=true"), tmp_path / "third")
    status = read_status(RunPaths(tmp_path / "third"))
    assert status["status"] == "done" and status["skipped"] is False
    (folder,) = (tmp_path / "store" / "runs").glob("*")
    assert read_protocol(RunPaths(folder))["code"] == fixed
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # made by the code of now: skipped silently
        execute(compose_config(*config), tmp_path / "fourth")
    assert read_status(RunPaths(tmp_path / "fourth"))["skipped"] is True and "stale" not in caplog.text
