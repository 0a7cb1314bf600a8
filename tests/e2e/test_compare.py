"""Comparing methods: per-run scores, seeds averaged per method, the sweep's files, prunelab-report."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import wandb

from prunelab import results
from prunelab.analysis import compare, gather, report
from prunelab.tracking import upload
from tests.helpers import (
    wandb_run_dirs,
    wandb_run_file,
    write_sweep,
)

SWEEP = ["schedule.pretrain_epochs=1", "schedule.finetune_epochs=1", "schedule.targets=[0.5,0.8]",
         "trainer.enable_progress_bar=false", "logger=wandb", "logger.mode=offline"]


@pytest.fixture(scope="module")
def multirun(tmp_path_factory):
    """`prunelab -m pruning=random,magnitude seed=0,1` on digits, W&B offline, in the default sweep
    directory (multirun/<date>/<time>): 4 runs and the comparison."""
    cwd = tmp_path_factory.mktemp("cwd")
    proc = subprocess.run([sys.executable, "-m", "prunelab", "-m", "pruning=random,magnitude", "seed=0,1", *SWEEP],
                          cwd=cwd, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true",
                               "OMP_NUM_THREADS": "1"})  # a tiny model: threads only contend with other tests
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep,) = cwd.glob("multirun/*/*")
    return sweep


@pytest.mark.slow  # starts the command or a multirun: the slow suite (pytest -m slow) runs it
def test_multirun_writes_the_comparison_files(multirun):
    assert {"comparison.png", "comparison.csv", "comparison.md"} <= {p.name for p in multirun.iterdir()}
    table = pd.read_csv(multirun / "comparison.csv")
    assert sorted(table["method"].unique()) == ["magnitude", "random"]
    assert table.groupby("method")["target_sparsity"].apply(list).to_dict() == {
        "magnitude": [0.0, 0.5, 0.8], "random": [0.0, 0.5, 0.8]}
    assert (table["n"] == 2).all()
    runs = pd.concat([pd.read_csv(p) for p in multirun.glob("*/results.csv")])
    expected = runs.groupby(["method", "target_sparsity"])["test_acc"].agg(["mean", "std"])
    got = table.set_index(["method", "target_sparsity"])[["test_acc_mean", "test_acc_std"]]
    assert got.sort_index().to_numpy() == pytest.approx(expected.sort_index().to_numpy())
    fig = compare.compare(gather.gather([multirun])).figure
    assert sorted(line.get_label() for line in fig.axes[0].get_lines()) == ["dense", "magnitude", "random"]
    assert "| magnitude | magnitude | 2 |" in (multirun / "comparison.md").read_text()


@pytest.mark.slow  # starts the command or a multirun: the slow suite (pytest -m slow) runs it
def test_the_figure_shows_the_test_splits_resolution_that_the_runs_recorded(multirun):
    samples = {json.dumps(json.loads(p.read_text())["samples"]) for p in multirun.glob("*/protocol.json")}
    assert samples == {json.dumps({"val": 144, "test": 359})}, "digits: 20% of 1797 images are the test split"
    test_panel = compare.compare(gather.gather([multirun])).figure.axes[0]
    assert test_panel.get_ylabel() == "test acc (%)\n1 test sample = 0.28 points"
    low, high = test_panel.get_ylim()
    assert high - low >= 5 * 100 / 359 - 1e-9


@pytest.mark.slow  # starts the command or a multirun: the slow suite (pytest -m slow) runs it
def test_multirun_runs_share_one_wandb_group_with_one_summary_run(multirun):
    stored = [Path(json.loads((job / "status.json").read_text())["run_dir"]) for job in multirun.glob("*_s*")]
    runs = [wandb_run_file(d) for run_dir in stored for d in wandb_run_dirs(run_dir)]
    assert len(runs) == 4
    group = str(multirun.relative_to(multirun.parents[2]))  # the sweep dir as configured: multirun/<date>/<time>
    assert {r["run"].run_group for r in runs} == {group}
    assert sorted(r["run"].job_type for r in runs) == ["magnitude", "magnitude", "random", "random"]
    (summary_dir,) = wandb_run_dirs(multirun)
    summary = wandb_run_file(summary_dir)
    assert summary["run"].run_group == group and summary["run"].job_type == "summary"
    (logged,) = summary["history"]
    assert logged["comparison/figure/_type"] == "image-file"
    assert logged[results.comparison_plot("acc") + "_table/_type"] == "table-file"  # the line series' data
    table = json.loads((summary_dir / "files" / logged["comparison/table/path"]).read_text())
    expected = pd.read_csv(multirun / "comparison.csv")
    assert pd.DataFrame(table["data"], columns=table["columns"])["test_acc_mean"].tolist() == pytest.approx(
        expected["test_acc_mean"].tolist())


@pytest.mark.slow  # starts the command or a multirun: the slow suite (pytest -m slow) runs it
def test_report_combines_two_multirun_directories(multirun, tmp_path):
    other = write_sweep(tmp_path / "other", {"taylor": [0.95, 0.9, 0.8]}, family="gradient")
    report.main([str(multirun), str(other), "--out", str(tmp_path / "out")])
    table = pd.read_csv(tmp_path / "out" / "comparison.csv")
    assert sorted(table["method"].unique()) == ["magnitude", "random", "taylor"]
    assert (tmp_path / "out" / "comparison.png").stat().st_size > 0
    comparison = compare.compare(report.load([str(multirun), str(other)]))
    assert list(comparison.groups) == [("classification", "digits_cnn", "digits"), ("classification", "mlp", "digits")]
    fig = comparison.figure  # the models differ: two groups, a row of panels each; the labels name the model
    rows = [sorted(line.get_label() for line in row.axes[0].get_lines()) for row in fig.subfigs]
    assert rows == [["dense", "magnitude (digits_cnn)", "random (digits_cnn)"], ["dense", "taylor (mlp)"]]


def test_the_summary_run_of_a_grouped_comparison_has_a_line_series_per_group(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    write_sweep(tmp_path / "digits", {"magnitude": [0.9, 0.8, 0.7]})
    write_sweep(tmp_path / "mnist", {"magnitude": [0.99, 0.98, 0.97]}, dataset="mnist")
    comparison = compare.compare(gather.gather([tmp_path]))
    paths = compare.write(comparison, tmp_path / "out")
    upload.log_comparison(comparison, paths.figure, str(tmp_path / "out"), group="g", mode="offline")
    wandb.teardown()  # waits until W&B has written everything down
    (logged,) = wandb_run_file(wandb_run_dirs(tmp_path / "out")[0])["history"]
    for dataset in ("digits", "mnist"):
        key = results.comparison_plot("acc", ("classification", "mlp", dataset))
        assert logged[f"{key}_table/_type"] == "table-file"
    assert logged["comparison/table/_type"] == "table-file" and logged["comparison/figure/_type"] == "image-file"


def test_report_without_runs_fails_with_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        report.main([str(tmp_path / "nowhere")])
    assert exit_.value.code == 2 and "no complete runs" in capsys.readouterr().err


def test_report_from_wandb_without_login_fails_with_one_line(monkeypatch, capsys):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", "/nonexistent")
    with pytest.raises(SystemExit) as exit_:
        report.main(["--wandb", "someone/prunelab", "--group", "multirun/x"])
    assert exit_.value.code == 2 and "prunelab-report: error: W&B:" in capsys.readouterr().err
