"""The results schema: every column of results.csv and layer_sparsity.csv, the run summary's scores, the W&B keys.

Writers (the stage recorder, the loggers) and readers (the run folder, gathering, the report from W&B) name
columns only through this module. A task's metric `m` (see `prunelab.tasks`) gives three columns:
`m_before_ft` (validation, right after pruning), `test_m_before_ft` (test, right after pruning, where
`metrics.test_before_ft` asks for it; else NaN), `val_m` and `test_m` (after fine-tuning).

Two sparsities, defined once (`prunelab.pruning.sparsity` computes them):
- `weight_sparsity`: the fraction of the dense model's prunable weights (the pruner's weights: Linear and
  Conv weights less exclusions) that are zero or removed. An unstructured target is a weight sparsity.
- `param_sparsity`: 1 - nonzero parameters now / parameters of the dense model, every tensor counted
  (biases, norms, the output layer). What a deployed model saves; the comparison's x-axis.
"""

# The labels every results row and W&B run carries, in column order.
LABELS = ("method", "family", "task", "model", "dataset", "schedule", "seed")
# Runs are compared, and ranked, only within a group that shares these labels: never across tasks, models or data.
GROUP_LABELS = LABELS[2:5]

STAGE = "stage"
TARGET = "target_sparsity"
WEIGHT_SPARSITY = "weight_sparsity"
PARAM_SPARSITY = "param_sparsity"
SPARSITIES = (WEIGHT_SPARSITY, PARAM_SPARSITY)
PARAMS = "params"
NONZERO_PARAMS = "nonzero_params"
EMPTY_LAYERS = "empty_layers"
MACS = "macs"
NONZERO_MACS = "nonzero_macs"
COMPRESSION = "compression"
SPEEDUP = "theoretical_speedup"
LATENCY = "latency_ms"
EPOCH = "epoch"
STAGE_TIME = "stage_time_s"
WALL_TIME = "wall_time_s"
TIMINGS = (LATENCY, STAGE_TIME, WALL_TIME)  # what differs between two runs of the same settings

# layer_sparsity.csv: one row per stage and weighted layer.
LAYER = "layer"
LAYER_SPARSITY = "sparsity"  # the fraction of that layer's dense weights that are zero or removed
LAYER_COLUMNS = (STAGE, LAYER, PARAMS, NONZERO_PARAMS, LAYER_SPARSITY)

# The comparison places every curve by this sparsity, so structural and unstructured methods share the axis.
AXIS = PARAM_SPARSITY
AXIS_LABEL = "parameters remaining (%)"

# Columns that are settings or counters, never averaged over seeds as metrics.
NOT_METRICS = ("seed", STAGE, TARGET, EPOCH)


# What gathering adds to each run's rows, and the comparison's table (comparison.csv): per series and target,
# every numeric column's mean and std over seeds, and the number of runs.
RUN, SERIES, BASE, RETRAIN, N = "run", "series", "base", "retrain", "n"


def mean(column: str) -> str:
    """The comparison table's column of `column`'s mean over seeds (`test_acc_mean`)."""
    return f"{column}_mean"


def std(column: str) -> str:
    return f"{column}_std"


def before_ft(metric: str) -> str:
    """The validation `metric` right after pruning, before fine-tuning (`acc_before_ft`)."""
    return f"{metric}_before_ft"


def test_before_ft(metric: str) -> str:
    """The test `metric` right after pruning, before fine-tuning (`test_ppl_before_ft`): the one-shot result without
    retraining, measured where `metrics.test_before_ft` is true (else NaN)."""
    return f"test_{metric}_before_ft"


def val(metric: str) -> str:
    """The validation `metric` after fine-tuning (`val_acc`)."""
    return f"val_{metric}"


def test(metric: str) -> str:
    """The test `metric` after fine-tuning (`test_acc`)."""
    return f"test_{metric}"


def onnx_latency(runtime: str, batch: int) -> str:
    """The final model's CPU latency in `runtime` (onnx or torch) at `batch` (`onnx_b1_ms`), from onnx.json."""
    return f"{runtime}_b{batch}_ms"


# -- the run summary: the scalars that rank runs ---------------------------------------------
def dense_score(metric: str) -> str:
    return f"dense_{metric}"


def final_score(metric: str) -> str:
    return f"final_{metric}"


def within_score(tolerance_label: str) -> str:
    """The highest sparsity whose metric is within the task's tolerance of dense (`param_sparsity_within_1pt`)."""
    return f"{AXIS}_within_{tolerance_label}"


def auc_score(metric: str) -> str:
    """The area under the metric over the axis sparsity (`acc_auc`)."""
    return f"{metric}_auc"


FINAL_SPARSITY = f"final_{AXIS}"
TOTAL_TIME = "total_time_s"


def stage_time_score(stage: int) -> str:
    return f"{STAGE_TIME}/{stage}"


# -- W&B: how the rows and scores are keyed in a run ---------------------------------------------
STAGE_PREFIX = "stage/"
SUMMARY_PREFIX = "summary/"
LAYER_SPARSITY_PREFIX = "layer_sparsity/"
STEP_METRIC = STAGE_PREFIX + AXIS  # stage metrics are charted against it
CURVE_TABLE = "curve/table"
LAYERS_TABLE = "layers/table"
LAYERS_PLOT = "layers/sparsity"


def stage_key(column: str) -> str:
    """The W&B key of a results column (`stage/test_acc`)."""
    return STAGE_PREFIX + column


def stage_columns(row: dict) -> dict:
    """A W&B history row's results columns (its `stage/` keys, prefix removed)."""
    return {k.removeprefix(STAGE_PREFIX): v for k, v in row.items() if k.startswith(STAGE_PREFIX)}


def curve_plot(metric: str) -> str:
    return f"curve/{test(metric)}_vs_{AXIS}"


def comparison_plot(metric: str, group: tuple[str, ...] = ()) -> str:
    """A sweep's summary run: the test metric vs the axis, one line per series; a `group`'s labels (task, model,
    dataset) name it when the comparison has several (`comparison/<task>/<model>/<dataset>/test_acc_vs_...`)."""
    return "comparison/" + "".join(f"{label}/" for label in group) + f"{test(metric)}_vs_{AXIS}"


COMPARISON_FIGURE = "comparison/figure"
COMPARISON_TABLE = "comparison/table"
COMPARISON_SUMMARY = "comparison/summary"
ONNX_PREFIX = "onnx/"  # the final model's ONNX check (onnx.json) in a run's W&B summary


def layers_table(stage: int) -> str:
    return f"layers/stage_{stage}"


def summary_key(score: str) -> str:
    return SUMMARY_PREFIX + score


def layer_sparsities(summary: dict) -> dict:
    """The final per-layer sparsity scalars of a W&B summary, keyed by layer."""
    return {k.removeprefix(LAYER_SPARSITY_PREFIX): v for k, v in summary.items() if k.startswith(LAYER_SPARSITY_PREFIX)}
