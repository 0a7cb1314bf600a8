"""A run's summary scores, from its results (one row per stage): what W&B summaries and sweep tables share.

Every score reads the task's metric (`prunelab.tasks`): its test column, its direction and its tolerance.
"""

import numpy as np
import pandas as pd

from prunelab import results
from prunelab.tasks import Metric, Task


def dense_value(run: pd.DataFrame, column: str) -> float:
    """`column` of the dense model (stage 0)."""
    return float(run.loc[run[results.STAGE] == 0, column].iloc[0])


def final_value(run: pd.DataFrame, column: str) -> float:
    """`column` after the last stage."""
    return float(run.sort_values(results.STAGE)[column].iloc[-1])


def sparsity_within(run: pd.DataFrame, metric: Metric) -> float:
    """The highest axis sparsity whose test metric is within the metric's tolerance of dense (0 if none is)."""
    column = results.test(metric.name)
    dense = dense_value(run, column)
    ok = run[[metric.within(v, dense) for v in run[column]]]
    return float(ok[results.AXIS].max()) if len(ok) else 0.0


def metric_auc(run: pd.DataFrame, column: str) -> float:
    """Area under `column` vs the axis sparsity: the trapezoid rule from sparsity 0 to the last sparsity reached.

    Units are metric x sparsity: a model that kept accuracy 1.0 up to sparsity 0.9 scores 0.9.
    """
    curve = run.sort_values(results.AXIS)
    return float(np.trapezoid(curve[column], curve[results.AXIS]))


def run_summary(run: pd.DataFrame, task: Task) -> dict[str, float]:
    """The scalars that rank runs: dense and final metric, sparsity within tolerance, AUC, wall times."""
    metric = task.metric
    test = results.test(metric.name)
    stages = run.sort_values(results.STAGE)
    return {
        results.dense_score(metric.name): dense_value(run, test),
        results.final_score(metric.name): final_value(run, test),
        results.FINAL_SPARSITY: float(stages[results.AXIS].iloc[-1]),
        results.within_score(metric.tolerance_label): sparsity_within(run, metric),
        results.auc_score(metric.name): metric_auc(run, test),
        results.TOTAL_TIME: float(stages[results.WALL_TIME].iloc[-1]),
        **{results.stage_time_score(int(s)): float(t) for s, t in zip(stages[results.STAGE], stages[results.STAGE_TIME])},
    }


def final_layers(layers: pd.DataFrame) -> pd.DataFrame:
    """The last stage of a per-layer table with a `stage` column (one row per stage and layer), else all of it."""
    return layers[layers[results.STAGE] == layers[results.STAGE].max()] if results.STAGE in layers else layers
