"""One results schema and one writer: no results column or W&B key is spelled outside `prunelab.results`, no
file of a run folder or comparison is written outside `prunelab.atomic`; and a task whose metric is better
when lower goes through rows, summaries, the comparison, W&B and the report ranked by its own direction."""

import ast
from pathlib import Path

import pandas as pd
import pytest
import yaml

from prunelab import results, summary, tasks
from prunelab.analysis import compare, gather, report
from prunelab.tracking.sink import define_stage_metrics
from tests.helpers import ROOT, fake_results

SRC = ROOT / "src" / "prunelab"
# Results columns and W&B keys that name nothing else (labels, `stage`, `epoch`, `params` and the layer table's
# `sparsity` are config, checkpoint or status keys and function names too, so they are not in this list).
COLUMNS = {results.TARGET, results.WEIGHT_SPARSITY, results.PARAM_SPARSITY, results.NONZERO_PARAMS,
           results.EMPTY_LAYERS, results.NONZERO_MACS, results.COMPRESSION, results.SPEEDUP, results.LATENCY,
           results.STAGE_TIME, results.WALL_TIME, results.FINAL_SPARSITY, results.TOTAL_TIME,
           *(f(m) for m in ("acc", "acc_top5") for f in (results.val, results.test, results.before_ft)),
           *(f("acc") for f in (results.dense_score, results.final_score, results.auc_score)),
           results.within_score("1pt"), "sparsity_within_1pt", "test_acc_top5"}
KEY_PREFIXES = (results.STAGE_PREFIX, results.SUMMARY_PREFIX, results.LAYER_SPARSITY_PREFIX, "curve/", "layers/",
                "comparison/")
WRITES = {"save", "to_csv", "savefig", "write_text", "write_bytes", "dump"}


def modules(*skip: str):
    for path in sorted(SRC.rglob("*.py")):
        if path.relative_to(SRC).as_posix() not in skip:
            yield path, ast.parse(path.read_text())


def test_no_results_column_or_wandb_key_is_spelled_outside_the_schema():
    found = []
    for path, tree in modules("results.py"):
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                    node.value in COLUMNS or node.value.startswith(KEY_PREFIXES)):
                found.append(f"{path.relative_to(SRC)}:{node.lineno} {node.value!r}")
    assert not found, "name these through prunelab.results:\n" + "\n".join(found)


def test_the_check_finds_a_spelled_column(tmp_path):
    tree = ast.parse('row["test_acc"] = 1\nkey = f"stage/{name}"')
    spelled = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
               and (n.value in COLUMNS or n.value.startswith(KEY_PREFIXES))]
    assert spelled == ["test_acc", "stage/"]


def test_every_file_is_written_through_the_atomic_module():
    found = []
    for path, tree in modules("atomic.py"):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in WRITES:
                owner = ast.unparse(node.func.value)
                if owner != "atomic" and (node.func.attr != "save" or owner in ("torch", "torch.export", "onnx")):
                    found.append(f"{path.relative_to(SRC)}:{node.lineno} {ast.unparse(node.func)}")
    assert not found, "write these through prunelab.atomic:\n" + "\n".join(found)


# -- a task whose metric is better when lower -------------------------------------------------------
LOWER = {"name": "fake_lm", "metric": "ppl", "higher_is_better": False, "tolerance": 0.1, "relative": True,
         "percent": False, "log_axis": True}
TASK = tasks.from_config({"task": LOWER})


def ppl_rows(method: str, seed: int, ppls, targets=(0.5, 0.8)) -> pd.DataFrame:
    rows = fake_results(method, seed, ppls, targets, family=method).assign(task=TASK.name)
    return rows.rename(columns={"acc_before_ft": "ppl_before_ft", "val_acc": "val_ppl", "test_acc": "test_ppl"})


def write_ppl_run(run_dir: Path, method: str, seed: int, ppls) -> None:
    (run_dir / ".hydra").mkdir(parents=True)
    ppl_rows(method, seed, ppls).to_csv(run_dir / "results.csv", index=False)
    config = {"task": LOWER, "pruning": {"name": method, "family": method}, "model": {"name": "tiny_llama"},
              "dataset": {"name": "text"}, "schedule": {"name": "oneshot", "targets": [0.5, 0.8]}, "seed": seed}
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))


def test_the_summary_of_a_lower_is_better_metric():
    scores = summary.run_summary(ppl_rows("wanda", 0, [20.0, 21.0, 30.0]), TASK)
    assert scores["dense_ppl"] == 20.0 and scores["final_ppl"] == 30.0
    assert scores["param_sparsity_within_10pct"] == 0.5  # 21 is within 10% of 20, 30 is not
    assert TASK.metric.within(21.9, 20.0) and not TASK.metric.within(22.1, 20.0)


def test_the_comparison_and_the_report_rank_the_lowest_first(tmp_path, capsys):
    for seed in (0, 1):  # seed s adds 0.02 s to each value
        write_ppl_run(tmp_path / f"mag_s{seed}", "magnitude", seed, [v + 0.02 * seed for v in (20.0, 22.0, 40.0)])
        write_ppl_run(tmp_path / f"rand_s{seed}", "random", seed, [v + 0.02 * seed for v in (20.0, 35.0, 90.0)])
    sweep = gather.gather([tmp_path])
    assert sweep.tasks == {(TASK.name, "tiny_llama", "text"): TASK}
    comparison = compare.compare(sweep)
    text = comparison.markdown
    assert "Test ppl per target sparsity (lower is better)" in text
    assert "| magnitude | magnitude | 2 | **20.01 ± 0.01** | **22.01 ± 0.01** | **40.01 ± 0.01** |" in text
    assert "| random | random | 2 | **20.01 ± 0.01** | 35.01 ± 0.01 ▼ | 90.01 ± 0.01 ▼ |" in text
    assert "best family magnitude, worst random, 50.0 ppl apart" in text
    assert comparison.figure.axes[0].get_yscale() == "log" and comparison.figure.axes[0].get_ylabel() == "test ppl"
    report.main([str(tmp_path), "--out", str(tmp_path / "out")])
    assert "| random | random | 2 | **20.01 ± 0.01** | 35.01 ± 0.01 ▼ |" in capsys.readouterr().out


def test_wandb_summarises_a_lower_is_better_metric_by_its_minimum():
    defined = {}

    class Run:
        def define_metric(self, name, **kwargs):
            defined[name] = kwargs

    define_stage_metrics(Run(), ["stage", "param_sparsity", "test_ppl", "val_ppl", "ppl_before_ft"], TASK)
    assert defined["stage/test_ppl"] == {"step_metric": "stage/param_sparsity", "summary": "min"}
    assert defined["stage/stage"] == {"step_metric": "stage/param_sparsity"} and defined["stage/param_sparsity"] == {}


def test_runs_of_two_tasks_are_not_ranked_together(tmp_path):
    write_ppl_run(tmp_path / "lm", "magnitude", 0, [20.0, 22.0, 40.0])
    fake_dir = tmp_path / "cls"
    (fake_dir / ".hydra").mkdir(parents=True)
    fake_results("magnitude", 0, [0.9, 0.8, 0.7]).to_csv(fake_dir / "results.csv", index=False)
    sweep = gather.gather([tmp_path])
    lm, cls = (TASK.name, "tiny_llama", "text"), ("classification", "mlp", "digits")
    assert sweep.tasks == {cls: tasks.CLASSIFICATION, lm: TASK}
    comparison = compare.compare(sweep)
    text = comparison.markdown
    assert text.index("## classification / mlp / digits") < text.index("Test acc (%) per target sparsity") < text.index(
        "## fake_lm / tiny_llama / text") < text.index("Test ppl per target sparsity (lower is better)")
    assert {key: part.task for key, part in comparison.groups.items()} == {cls: tasks.CLASSIFICATION, lm: TASK}
    ylabels = [ax.get_ylabel() for ax in comparison.figure.axes]
    assert ylabels[0] == "test acc (%)" and "test ppl" in ylabels, "a row of panels per task, each in its metric"
