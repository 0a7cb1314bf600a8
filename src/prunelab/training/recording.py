"""Recording a stage: what a finished stage measured, and its results rows (pure functions).

The one place that sets the order of results.csv's columns and layer_sparsity.csv's; their names are
`prunelab.results`'.
"""

import math
from dataclasses import dataclass

from prunelab import results as R
from prunelab.training.meter import LayerCost


@dataclass(frozen=True)
class StageMeasures:
    """What a finished stage measured."""

    stage: int
    target: float  # the stage's target sparsity (0 for dense training)
    weight_sparsity: float  # see `prunelab.results`
    param_sparsity: float
    params: int
    nonzero: int
    empty_layers: int  # prunable tensors with no weight left
    compute: dict  # `Meter.measure`'s columns
    metric: str  # the task's metric, e.g. acc
    before_ft: float  # its validation value right after pruning
    test_before_ft: float  # its test value right after pruning (NaN where not measured)
    val: dict  # the host's evaluation of the validation split
    test: dict  # and of the test split
    epoch: int
    stage_time_s: float
    wall_time_s: float


def stage_row(labels: dict, m: StageMeasures) -> dict:
    """The results row of a finished stage (the columns of results.csv, in order)."""
    extra = {R.test(name): value for name, value in m.test.items() if name != m.metric}  # e.g. test_acc_top5
    return {
        **{label: labels[label] for label in R.LABELS if label in labels},
        R.STAGE: m.stage,
        R.TARGET: m.target,
        R.WEIGHT_SPARSITY: m.weight_sparsity,
        R.PARAM_SPARSITY: m.param_sparsity,
        R.PARAMS: m.params,
        R.NONZERO_PARAMS: m.nonzero,
        R.EMPTY_LAYERS: m.empty_layers,
        **m.compute,
        R.before_ft(m.metric): m.before_ft,
        R.test_before_ft(m.metric): m.test_before_ft,
        R.val(m.metric): m.val[m.metric],
        R.test(m.metric): m.test[m.metric],
        **extra,
        R.EPOCH: m.epoch,
        R.STAGE_TIME: m.stage_time_s,
        R.WALL_TIME: m.wall_time_s,
    }


def stage_line(row: dict, stages: int, metric: str) -> str:
    """A results row in one line, as a run's log shows each of its `stages` stages (and a skipped run its last;
    a column an older results.csv lacks reads nan)."""
    get = {key: row.get(key, math.nan) for key in (R.TARGET, R.WEIGHT_SPARSITY, R.PARAM_SPARSITY, R.before_ft(metric),
                                                   R.val(metric), R.test(metric))}
    return (f"stage {row[R.STAGE]}/{stages}  target {get[R.TARGET]:.4f}  weights pruned {get[R.WEIGHT_SPARSITY]:.4f}"
            f" (parameters {get[R.PARAM_SPARSITY]:.4f})  {metric} before ft {get[R.before_ft(metric)]:.4f}"
            f" -> after ft {get[R.val(metric)]:.4f}  (test {get[R.test(metric)]:.4f})")


def has_row(rows: list[dict], stage: int) -> bool:
    """Whether `rows` hold the row of `stage`."""
    return any(r[R.STAGE] == stage for r in rows)


def dense_macs(rows: list[dict]) -> float:
    """The dense model's MACs, from its row (stage 0, the first)."""
    return rows[0][R.MACS]


def layer_rows(stage: int, costs: dict[str, LayerCost], dense: dict[str, int]) -> list[dict]:
    """One row per weighted layer: its weights now, nonzero, and the fraction of its dense weights gone."""
    return [
        dict(zip(R.LAYER_COLUMNS, (stage, name, c.params, c.nonzero, 1.0 - c.nonzero / dense.get(name, c.params)),
                 strict=True))
        for name, c in costs.items() if c.params
    ]


def dense_layer_params(layer_rows_so_far: list[dict]) -> dict[str, int]:
    """Each layer's weights in the dense stage (stage 0), from the layer rows written so far."""
    return {r[R.LAYER]: r[R.PARAMS] for r in layer_rows_so_far if r[R.STAGE] == 0}
