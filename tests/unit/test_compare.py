"""Comparing methods: per-run scores, seeds averaged per method, the sweep's files, prunelab-report."""


import json

import pandas as pd
import pytest
import yaml

from prunelab import summary
from prunelab.tasks import CLASSIFICATION
from prunelab.analysis import aggregate, compare, figures, gather, report
from prunelab.labels import FAMILIES
from prunelab.paths import ComparisonPaths
from tests.helpers import (
    CONF,
    fake_results,
    options,
    write_run,
    write_sweep,
)


def test_run_scores_on_a_known_curve():
    run = fake_results("m", 0, [0.90, 0.895, 0.88, 0.50], targets=(0.5, 0.8, 0.9))
    scores = summary.run_summary(run, CLASSIFICATION)
    assert scores["dense_acc"] == 0.90 and scores["final_acc"] == 0.50 and scores["final_param_sparsity"] == 0.9
    assert scores["param_sparsity_within_1pt"] == 0.5  # 0.895 is within a point of 0.90, 0.88 is not
    assert scores["acc_auc"] == pytest.approx(0.5 * (0.9 + 0.895) / 2 + 0.3 * (0.895 + 0.88) / 2 + 0.1 * (0.88 + 0.5) / 2)
    assert scores["total_time_s"] == 4.0 and scores["stage_time_s/3"] == 1.0


def test_sparsity_within_one_point_is_the_highest_such_sparsity_even_after_a_dip():
    run = fake_results("m", 0, [0.90, 0.85, 0.895])
    assert summary.sparsity_within(run, CLASSIFICATION.metric) == 0.8
    assert summary.sparsity_within(fake_results("m", 0, [0.90, 0.70, 0.60]), CLASSIFICATION.metric) == 0.0


def test_aggregate_gives_mean_and_std_over_seeds_per_method_and_target():
    runs = pd.concat([fake_results("a", 0, [0.9, 0.8, 0.6]).assign(run="a0"),
                      fake_results("a", 1, [0.8, 0.6, 0.4]).assign(run="a1"),
                      fake_results("b", 0, [0.9, 0.9, 0.9], family="random").assign(run="b0")])
    agg = aggregate.aggregate(runs.assign(series=runs["method"]))
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
    agg = aggregate.aggregate(sweep.runs)
    assert (agg["n"] == 2).all(), "seeds are averaged, scopes are not"


def test_per_layer_sparsity_is_the_last_stages(tmp_path):
    run_dir = write_run(tmp_path, "magnitude", 0, [0.9, 0.8, 0.7])
    pd.DataFrame({"stage": [0, 0, 2, 2], "layer": ["a", "b", "a", "b"], "sparsity": [0.0, 0.0, 0.7, 0.9]}).to_csv(
        run_dir / "layer_sparsity.csv", index=False)
    layers = gather.gather([tmp_path]).layers
    assert layers[["layer", "sparsity"]].values.tolist() == [["a", 0.7], ["b", 0.9]]


def test_series_labels_name_a_node_only_some_runs_of_a_method_have():
    base = {"pruning.name": "wanda", "pruning.scope": "row", "model.name": "llama_small"}
    owl = {**base, "pruning.owl.m": 5.0, "pruning.owl.lamda": 0.08}
    assert gather.series_labels({"a": base, "b": owl}) == {"a": "wanda", "b": "wanda (owl)"}
    labels = gather.series_labels({"a": base, "b": owl, "c": {**owl, "pruning.scope": "layer"}})
    assert labels == {"a": "wanda (scope=row)", "b": "wanda (scope=row, owl)", "c": "wanda (scope=layer, owl)"}


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
    assert sorted(line.get_label() for line in lines) == ["dense", "magnitude", "random", "snip", "taylor"]
    style = {line.get_label(): (line.get_linestyle(), line.get_color()) for line in lines}
    assert style["random"][0] != style["magnitude"][0], "families differ in line style"
    assert style["taylor"][0] == style["snip"][0] and style["taylor"][1] != style["snip"][1], "one family, two shades"
    assert fig.axes[1].get_ylabel() == "acc before ft (%)" and fig.axes[2].get_xlabel() == "nonzero params"
    assert fig.axes[0].get_xlabel() == "parameters remaining (%)"
    assert sorted(t.get_text() for t in curves.get_legend().get_texts()) == [
        "dense", "magnitude", "random", "snip", "taylor"]


def test_every_panel_says_what_it_shows_and_ticks_the_targets(tmp_path):
    write_sweep(tmp_path, {"magnitude": [0.9, 0.88, 0.8]}, targets=(0.5, 0.9))
    fig = compare.compare(gather.gather([tmp_path])).figure
    assert [ax.get_title() for ax in fig.axes] == ["test acc after fine-tuning",
                                                   "validation acc right after pruning, before fine-tuning",
                                                   "test acc after fine-tuning, by nonzero params"]
    for ax in fig.axes[:2]:  # the parameters remaining at dense and at each target reached
        assert ax.get_xticks().tolist() == pytest.approx([100, 50, 10])
        assert [t.get_text() for t in ax.get_xticklabels()] == ["100", "50", "10"]


def saturated_sweep(tmp_path, samples=None):
    """One seed of a method that stays within a test image or two of dense: 99.2, 99.0, 98.6 %."""
    write_sweep(tmp_path, {"magnitude": [0.992, 0.990, 0.986]}, seeds=(0,))
    if samples:
        for run in tmp_path.iterdir():
            budget = [{"stage": k, "epochs": 1, "lr": 0.1} for k in range(3)]
            (run / "protocol.json").write_text(json.dumps({"budget": budget, "samples": samples}))
    return compare.compare(gather.gather([tmp_path]))


def test_each_panel_has_the_dense_value_as_a_reference_line(tmp_path):
    test, before, speed = saturated_sweep(tmp_path).figure.axes
    for ax in (test, before, speed):
        (dense,) = [line for line in ax.get_lines() if line.get_label() == "dense"]
        assert list(dense.get_ydata()) == pytest.approx([99.2, 99.2])


def test_the_y_range_is_never_narrower_than_a_few_samples_of_the_split_drawn(tmp_path):
    test, before, speed = saturated_sweep(tmp_path, {"val": 180, "test": 360}).figure.axes
    for ax, one in ((test, 100 / 360), (before, 100 / 180), (speed, 100 / 360)):
        low, high = ax.get_ylim()
        assert high - low >= figures.MIN_SAMPLES * one - 1e-9 and high <= 100
        assert low <= 98.6 and high >= 99.2, "every point still shows"
    assert test.get_ylabel() == "test acc (%)\n1 test sample = 0.28 points"
    assert before.get_ylabel() == "acc before ft (%)\n1 validation sample = 0.56 points"
    unknown, _, _ = saturated_sweep(tmp_path / "unrecorded").figure.axes  # no recorded split size: autoscaled
    assert unknown.get_ylim()[1] - unknown.get_ylim()[0] < figures.MIN_SAMPLES * 100 / 360


def test_the_y_range_stays_within_0_and_100_percent():
    assert figures.widened(99.5, 99.9, 2.0, 100) == (98.0, 100)
    assert figures.widened(0.1, 0.2, 2.0, 100) == (0.0, 2.0)
    assert figures.widened(40, 60, 2.0, 100) == (40, 60)
    assert figures.widened(50, 50, 200, 100) == (0.0, 100)


def test_the_structural_note_appears_only_when_a_structural_method_ran(tmp_path):
    note = "Structural targets are channel ratios"
    write_sweep(tmp_path / "u", {"magnitude": [0.9, 0.8, 0.7]})
    assert note not in compare.compare(gather.gather([tmp_path / "u"])).markdown
    write_sweep(tmp_path / "s", {"l1_filter": [0.9, 0.7, 0.5]}, family="structural")
    assert note in compare.compare(gather.gather([tmp_path])).markdown


def failed_store_run(folder, targets=(0.5, 0.8)):
    """A run folder of the store (no Hydra config) whose run failed after the dense stage."""
    folder.mkdir(parents=True)
    fake_results("taylor", 0, [0.9], targets, family="gradient").to_csv(folder / "results.csv", index=False)
    (folder / "status.json").write_text(json.dumps({"status": "failed", "error": "RuntimeError: pruning bug"}))
    budget = [{"stage": k, "epochs": 1, "lr": 0.1} for k in range(len(targets) + 1)]
    (folder / "protocol.json").write_text(json.dumps({"budget": budget}))
    return folder


def test_the_report_leaves_out_failed_and_unfinished_runs_and_lists_them(tmp_path, capsys):
    write_sweep(tmp_path / "sweep", {"magnitude": [0.90, 0.80, 0.70], "random": [0.90, 0.60, 0.30]},
                family="random")
    failed = failed_store_run(tmp_path / "store" / "runs" / "taylor-abc")
    running = write_run(tmp_path / "store" / "runs" / "snip-def", "snip", 0, [0.9, 0.85, 0.8], family="gradient")
    (running / "status.json").write_text(json.dumps({"status": "running"}))
    dense = write_run(tmp_path / "dense-only", "magnitude", 3, [0.9], targets=())
    sweep = gather.gather([tmp_path])
    reasons = dict(sweep.skipped)
    assert reasons == {str(failed): "failed: RuntimeError: pruning bug", str(running): "unfinished (status running)",
                       str(dense): "dense only: no pruned stage to compare"}
    assert set(sweep.runs["method"]) == {"magnitude", "random"}
    report.main([str(tmp_path), "--out", str(tmp_path / "out")])
    text = capsys.readouterr().out
    assert "At 80.00% of the parameters pruned" in text, "the highest sparsity every complete run reaches"
    assert f"- `{failed}`: failed: RuntimeError: pruning bug" in text and "4 runs compared, 3 left out" in text


def test_runs_of_two_datasets_are_compared_each_in_its_own_group_never_ranked_together(tmp_path):
    write_sweep(tmp_path / "digits", {"magnitude": [0.90, 0.80, 0.70]})
    write_sweep(tmp_path / "digits", {"random": [0.90, 0.60, 0.30]}, family="random")
    write_sweep(tmp_path / "mnist", {"taylor": [0.99, 0.98, 0.97]}, family="gradient", dataset="mnist")
    comparison = compare.compare(gather.gather([tmp_path]))
    text = comparison.markdown
    # magnitude is the best on digits at every target though taylor, on mnist, is higher
    assert "| magnitude (digits) | magnitude | 2 | **90.50 ± 0.71** | **80.50 ± 0.71** | **70.50 ± 0.71** |" in text
    digits, mnist = text.split("## classification / mlp / digits")[1].split("## classification / mlp / mnist")
    assert "| taylor (mnist) | gradient | 2 | **99.50 ± 0.71** | **98.50 ± 0.71** | **97.50 ± 0.71** |" in mnist
    assert "taylor" not in digits and "magnitude" not in mnist
    assert "best family magnitude, worst random, 40.0 points apart" in digits and "one family (gradient)" in mnist
    assert list(comparison.groups) == [("classification", "mlp", "digits"), ("classification", "mlp", "mnist")]
    assert sorted(comparison.table["dataset"].unique()) == ["digits", "mnist"]
    fig = comparison.figure
    assert len(fig.axes) == 6, "a row of three panels per group"
    first_row = {line.get_label() for ax in fig.axes[:3] for line in ax.get_lines()}
    assert first_row == {"magnitude (digits)", "random (digits)", "dense"}
    assert {line.get_label() for line in fig.axes[3].get_lines()} == {"taylor (mnist)", "dense"}
    assert [f.get_suptitle() for f in fig.subfigs] == ["classification / mlp / digits / iterative: mean ± std over "
                                                       "2 seeds", "classification / mlp / mnist / iterative: mean "
                                                       "± std over 2 seeds"]


def test_second_panel_prefers_speedup_when_the_column_exists(tmp_path):
    write_sweep(tmp_path, {"l1_filter": [0.9, 0.85, 0.7]}, family="structural", theoretical_speedup=[1.0, 1.8, 3.5],
                macs=[100, 55, 28])
    comparison = compare.compare(gather.gather([tmp_path]))
    axis = comparison.figure.axes[2]
    assert axis.get_xlabel() == "theoretical speedup"
    assert axis.get_lines()[0].get_xdata().tolist() == [1.0, 1.8, 3.5]
    assert {"macs_mean", "theoretical_speedup_std"} <= set(comparison.table.columns)


def test_markdown_is_a_method_by_target_table(tmp_path):
    write_sweep(tmp_path, {"magnitude": [0.90, 0.80, 0.70]})
    text = compare.compare(gather.gather([tmp_path])).markdown
    assert "| method | family | n | dense | 50% | 80% |" in text
    assert "| magnitude | magnitude | 2 | **90.50 ± 0.71** | **80.50 ± 0.71** | **70.50 ± 0.71** |" in text
    assert "| magnitude | 2 | 90.50 ± 0.71 | 70.50 ± 0.71 | 0.00 ± 0.00 |" in text  # dense, final, within 1 pt



def test_the_best_is_bold_and_only_gaps_beyond_the_spread_over_seeds_are_marked(tmp_path):
    write_sweep(tmp_path, {"magnitude": [0.90, 0.80, 0.70], "random": [0.90, 0.79, 0.50]})  # seed s adds 0.01 s
    text = compare.compare(gather.gather([tmp_path])).markdown
    # 50%: 1 point apart, within 0.71 + 0.71; 80%: 20 points apart, beyond it
    assert "| magnitude | magnitude | 2 | **90.50 ± 0.71** | **80.50 ± 0.71** | **70.50 ± 0.71** |" in text
    assert "| random | magnitude | 2 | **90.50 ± 0.71** | 79.50 ± 0.71 | 50.50 ± 0.71 ▼ |" in text  # a tie is bold too
    assert aggregate.beyond_spread((0.9, 0.01), (0.5, float("nan")), CLASSIFICATION) is False  # one seed: no mark


def test_separation_reads_every_curve_at_the_highest_sparsity_all_reach(tmp_path):
    write_sweep(tmp_path, {"magnitude": [0.90, 0.80, 0.70]}, seeds=(0,), targets=(0.5, 0.8))
    write_sweep(tmp_path / "s", {"l1_filter": [0.90, 0.60, 0.20]}, seeds=(0,), targets=(0.5, 0.9),
                family="structural")
    comparison = compare.compare(gather.gather([tmp_path]))
    table = aggregate.separation(comparison.table, CLASSIFICATION)
    assert table["series"].tolist() == ["magnitude", "l1_filter"] and (table["param_sparsity"] == 0.8).all()
    # l1_filter between (0.5, 0.60) and (0.9, 0.20) at 0.8: 0.60 - 0.40 * 0.3 / 0.4 = 0.30
    assert table["test_acc"].tolist() == pytest.approx([0.70, 0.30])
    assert table["acc_before_ft"].tolist() == pytest.approx([0.70, 0.30])
    assert "best family magnitude, worst structural, 40.0 points apart after fine-tuning" in comparison.markdown


def test_write_puts_every_comparison_file_in_place_whole(tmp_path):
    write_sweep(tmp_path / "sweep", {"magnitude": [0.9, 0.8, 0.7]})
    comparison = compare.compare(gather.gather([tmp_path / "sweep"]))
    paths = compare.write(comparison, tmp_path / "out")
    assert paths == ComparisonPaths(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths.files())
    assert paths.figure.read_bytes().startswith(b"\x89PNG")  # the format of its name, not of its temp file's
    pd.testing.assert_frame_equal(pd.read_csv(paths.table), comparison.table, check_dtype=False)
    assert paths.document.read_text() == comparison.markdown


# -- a real multirun ---------------------------------------------------------------------------


def test_the_comparison_carries_each_methods_protocol(tmp_path):
    write_sweep(tmp_path, {"magnitude": [0.9, 0.8, 0.7]})
    protocol = {"code": {"prunelab": "0.1.0", "commit": "0123456789abcdef", "dirty": True},
                "libraries": {"torch": "2.14.1"}, "device": "cpu", "data": "f" * 64,
                "budget": [{"stage": 0, "epochs": 15, "lr": 0.05, "lr_schedule": "prunelab.training.lr.cosine"},
                           {"stage": 1, "epochs": 3, "lr": 0.005, "lr_schedule": "prunelab.training.lr.cosine"},
                           {"stage": 2, "epochs": 3, "lr": 0.005, "lr_schedule": "prunelab.training.lr.cosine"}]}
    for run in tmp_path.iterdir():
        (run / "protocol.json").write_text(json.dumps({**protocol, "samples": {"val": 144, "test": 360}}))
    comparison = compare.compare(gather.gather([tmp_path]))
    row = ("| magnitude | prunelab 0.1.0 0123456789ab (dirty) | torch 2.14.1 | cpu | ffffffffffffffff | dense 15 epochs "
           "at lr 0.05; 2 stages of 3 epochs at lr 0.005 (cosine LR) | val 144, test 360 |")
    assert row in comparison.markdown
    assert (comparison.table["code"] == "prunelab 0.1.0 0123456789ab (dirty)").all()


def test_a_one_epoch_stage_reads_as_one_epoch():
    budget = [{"stage": 0, "epochs": 10, "lr": 0.1}, {"stage": 1, "epochs": 1, "lr": 0.01}]
    assert gather.protocol_row({"budget": budget})["budget"] == "dense 10 epochs at lr 0.1; 1 stage of 1 epoch at lr 0.01"


def test_two_targets_reaching_one_sparsity_are_two_points_not_a_vertical_segment():
    xs, ys = figures.unjoined(pd.Series([100.0, 75.0, 75.0, 50.0]), pd.Series([1.0, 2.0, 9.0, 3.0]))
    assert xs.tolist()[:2] == [100.0, 75.0] and pd.isna(xs[2]) and xs.tolist()[3:] == [75.0, 50.0]
    assert ys.tolist()[:2] == [1.0, 2.0] and pd.isna(ys[2]) and ys.tolist()[3:] == [9.0, 3.0]
    same, _ = figures.unjoined(pd.Series([100.0, 75.0]), pd.Series([1.0, 2.0]))
    assert same.tolist() == [100.0, 75.0]


def test_a_speedup_axis_within_a_decade_has_plain_labels_that_do_not_overlap():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.subplots()
    ax.plot([1.0, 1.17, 1.36], [1, 2, 3])
    ax.set_xscale("log")
    figures._narrow_log_ticks(ax)
    fig.draw_without_rendering()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and all("times" not in t and "^" not in t for t in labels)
    assert len(ax.xaxis.get_minorticklocs()) == 0 and 3 <= len(labels) <= 7
