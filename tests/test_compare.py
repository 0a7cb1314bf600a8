"""Comparing methods: per-run scores, seeds averaged per method, the sweep's files, prunelab-report."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from prunelab import scores
from prunelab.analysis import compare, gather, report
from tests.helpers import (
    CONF,
    fake_results,
    options,
    wandb_run_dirs,
    wandb_run_file,
    write_run,
    write_sweep,
)

FAMILIES = {"random", "magnitude", "gradient", "structural"}


def test_run_scores_on_a_known_curve():
    run = fake_results("m", 0, [0.90, 0.895, 0.88, 0.50], targets=(0.5, 0.8, 0.9))
    summary = scores.run_summary(run)
    assert summary["dense_acc"] == 0.90 and summary["final_acc"] == 0.50 and summary["final_sparsity"] == 0.9
    assert summary["sparsity_within_1pt"] == 0.5  # 0.895 is within a point of 0.90, 0.88 is not
    assert summary["acc_auc"] == pytest.approx(0.5 * (0.9 + 0.895) / 2 + 0.3 * (0.895 + 0.88) / 2 + 0.1 * (0.88 + 0.5) / 2)
    assert summary["total_time_s"] == 4.0 and summary["stage_time_s/3"] == 1.0


def test_sparsity_within_one_point_is_the_highest_such_sparsity_even_after_a_dip():
    run = fake_results("m", 0, [0.90, 0.85, 0.895])
    assert scores.sparsity_within(run) == 0.8
    assert scores.sparsity_within(fake_results("m", 0, [0.90, 0.70, 0.60])) == 0.0


def test_aggregate_gives_mean_and_std_over_seeds_per_method_and_target():
    runs = pd.concat([fake_results("a", 0, [0.9, 0.8, 0.6]).assign(run="a0"),
                      fake_results("a", 1, [0.8, 0.6, 0.4]).assign(run="a1"),
                      fake_results("b", 0, [0.9, 0.9, 0.9], family="random").assign(run="b0")])
    agg = compare.aggregate(runs.assign(series=runs["method"]))
    a = agg[agg["series"] == "a"].set_index("target_sparsity")
    assert a["n"].tolist() == [2, 2, 2]
    assert a["test_acc_mean"].tolist() == pytest.approx([0.85, 0.7, 0.5])
    assert a["test_acc_std"].tolist() == pytest.approx([0.0707107, 0.1414214, 0.1414214])
    assert agg["series"].tolist()[:3] == ["b"] * 3, "random methods come first"
    b = agg[agg["series"] == "b"]
    assert b["n"].tolist() == [1, 1, 1] and b["test_acc_std"].isna().all(), "one seed: no std"


@pytest.mark.parametrize("method", options("pruning"))
def test_every_pruning_method_declares_its_family(method):
    node = yaml.safe_load((CONF / "pruning" / f"{method}.yaml").read_text())
    assert node["family"] in FAMILIES
    assert gather.method_family(node) == node["family"]


def test_family_falls_back_to_the_name_only_without_the_key():
    assert gather.method_family({"name": "random_channel"}) == "random"
    assert gather.method_family({"name": "snip"}) == "other"
    assert gather.method_family({"name": "random", "family": "structural"}) == "structural"


def test_gather_skips_incomplete_and_failed_runs_and_says_so(tmp_path, caplog):
    write_run(tmp_path / "ok", "magnitude", 0, [0.9, 0.8, 0.7])
    write_run(tmp_path / "killed", "magnitude", 1, [0.9, 0.8])  # 2 of 3 stages
    (tmp_path / "failed" / ".hydra").mkdir(parents=True)
    (tmp_path / "failed" / ".hydra" / "config.yaml").write_text("seed: 2\n")
    sweep = gather.gather([tmp_path, tmp_path / "nowhere"])
    assert sweep.runs["run"].unique().tolist() == [str(tmp_path / "ok")]
    reasons = dict(sweep.skipped)
    assert reasons[str(tmp_path / "killed")] == "incomplete: 2 of 3 stages"
    assert "no results.csv" in reasons[str(tmp_path / "failed")]
    assert reasons[str(tmp_path / "nowhere")] == "no such file or directory"
    assert "killed" in caplog.text and "Left out" in compare.compare(sweep).markdown


def test_gather_takes_globs_and_labels_variants_apart(tmp_path):
    write_sweep(tmp_path / "s1", {"magnitude": [0.9, 0.8, 0.7]})
    write_sweep(tmp_path / "s2", {"magnitude": [0.9, 0.85, 0.8]}, scope="layer")
    sweep = gather.gather([str(tmp_path / "s*")])
    assert sorted(sweep.runs["series"].unique()) == ["magnitude (scope=global)", "magnitude (scope=layer)"]
    agg = compare.aggregate(sweep.runs)
    assert (agg["n"] == 2).all(), "seeds are averaged, scopes are not"


def test_per_layer_sparsity_is_the_last_stages(tmp_path):
    run_dir = write_run(tmp_path, "magnitude", 0, [0.9, 0.8, 0.7])
    pd.DataFrame({"stage": [0, 0, 2, 2], "layer": ["a", "b", "a", "b"], "sparsity": [0.0, 0.0, 0.7, 0.9]}).to_csv(
        run_dir / "layer_sparsity.csv", index=False)
    layers = gather.gather([tmp_path]).layers
    assert layers[["layer", "sparsity"]].values.tolist() == [["a", 0.7], ["b", 0.9]]


def test_series_labels_show_only_what_varies():
    base = {"pruning.name": "magnitude", "pruning.scope": "global", "model.name": "lenet", "dataset.seed": 0}
    same = gather.series_labels({"a": base, "b": {**base, "dataset.seed": 1}})
    assert same == {"a": "magnitude", "b": "magnitude"}
    models = gather.series_labels({"a": base, "b": {**base, "model.name": "resnet20"}})
    assert models == {"a": "magnitude (lenet)", "b": "magnitude (resnet20)"}


def test_plot_has_one_line_per_method_styled_by_family(tmp_path):
    write_sweep(tmp_path, {"random": [0.9, 0.5, 0.2]}, family="random")
    write_sweep(tmp_path, {"magnitude": [0.9, 0.88, 0.8]}, family="magnitude")
    write_sweep(tmp_path, {"taylor": [0.9, 0.89, 0.85], "snip": [0.9, 0.87, 0.82]}, family="gradient")
    fig = compare.compare(gather.gather([tmp_path])).figure
    curves, lines = fig.axes[0], fig.axes[0].get_lines()
    assert sorted(line.get_label() for line in lines) == ["magnitude", "random", "snip", "taylor"]
    style = {line.get_label(): (line.get_linestyle(), line.get_color()) for line in lines}
    assert style["random"][0] != style["magnitude"][0], "families differ in line style"
    assert style["taylor"][0] == style["snip"][0] and style["taylor"][1] != style["snip"][1], "one family, two shades"
    assert len(fig.axes) == 2 and fig.axes[1].get_xlabel() == "nonzero params"
    assert curves.get_legend() is not None


def test_second_panel_prefers_speedup_when_the_column_exists(tmp_path):
    write_sweep(tmp_path, {"l1_filter": [0.9, 0.85, 0.7]}, family="structural", theoretical_speedup=[1.0, 1.8, 3.5],
                macs=[100, 55, 28])
    comparison = compare.compare(gather.gather([tmp_path]))
    axis = comparison.figure.axes[1]
    assert axis.get_xlabel() == "theoretical speedup"
    assert axis.get_lines()[0].get_xdata().tolist() == [1.0, 1.8, 3.5]
    assert {"macs_mean", "theoretical_speedup_std"} <= set(comparison.table.columns)


def test_markdown_is_a_method_by_target_table(tmp_path):
    write_sweep(tmp_path, {"magnitude": [0.90, 0.80, 0.70]})
    text = compare.compare(gather.gather([tmp_path])).markdown
    assert "| method | family | n | dense | 50% | 80% |" in text
    assert "| magnitude | magnitude | 2 | 90.50 ± 0.71 | 80.50 ± 0.71 | 70.50 ± 0.71 |" in text
    assert "| magnitude | 2 | 90.50 ± 0.71 | 70.50 ± 0.71 | 0.00 ± 0.00 |" in text  # dense, final, within 1 pt


# -- a real multirun ---------------------------------------------------------------------------
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
    assert sorted(line.get_label() for line in fig.axes[0].get_lines()) == ["magnitude", "random"]
    assert "| magnitude | magnitude | 2 |" in (multirun / "comparison.md").read_text()


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
    assert logged["comparison/test_acc_vs_sparsity_table/_type"] == "table-file"  # the line series' data
    table = json.loads((summary_dir / "files" / logged["comparison/table/path"]).read_text())
    expected = pd.read_csv(multirun / "comparison.csv")
    assert pd.DataFrame(table["data"], columns=table["columns"])["test_acc_mean"].tolist() == pytest.approx(
        expected["test_acc_mean"].tolist())


def test_report_combines_two_multirun_directories(multirun, tmp_path):
    other = write_sweep(tmp_path / "other", {"taylor": [0.95, 0.9, 0.8]}, family="gradient")
    report.main([str(multirun), str(other), "--out", str(tmp_path / "out")])
    table = pd.read_csv(tmp_path / "out" / "comparison.csv")
    assert sorted(table["method"].unique()) == ["magnitude", "random", "taylor"]
    assert (tmp_path / "out" / "comparison.png").stat().st_size > 0
    fig = compare.compare(report.load([str(multirun), str(other)])).figure
    labels = sorted(line.get_label() for line in fig.axes[0].get_lines())  # the models differ, so they show
    assert labels == ["magnitude (digits_cnn)", "random (digits_cnn)", "taylor (mlp)"]


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
