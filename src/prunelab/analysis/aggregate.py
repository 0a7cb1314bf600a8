"""Statistics over seeds: each series' mean and std per target, per-run scores averaged, the series'
order, the per-layer sparsity, and reading curves at a common sparsity.

A run is one `results.csv` (one row per stage); `prunelab.analysis.gather` collects runs into a sweep
whose runs of the same method and settings, seeds aside, form a *series*. The per-run scores
(`prunelab.summary`) are the ones logged to W&B as run summary scalars and the ones averaged here, so both
agree. Every curve is placed by `results.AXIS` (param_sparsity) and ranked by the task's metric.
"""

import numpy as np
import pandas as pd

from prunelab import results
from prunelab.labels import FAMILIES
from prunelab.summary import run_summary
from prunelab.tasks import Task

BASE, N, RETRAIN, RUN, SERIES = results.BASE, results.N, results.RETRAIN, results.RUN, results.SERIES
mean, std = results.mean, results.std


def _labels(table: pd.DataFrame) -> list[str]:
    keys = (SERIES, *(label for label in results.LABELS if label != "seed"), BASE, RETRAIN)
    return [c for c in keys if c in table]


def _order(table: pd.DataFrame, *within: str) -> pd.DataFrame:
    """Families in FAMILIES order (others last), then series by name."""
    rank = table[results.LABELS[1]].map({f: i for i, f in enumerate(FAMILIES)}).fillna(len(FAMILIES))
    ordered = table.assign(_rank=rank).sort_values(["_rank", SERIES, *within], kind="stable")
    return ordered.drop(columns="_rank").reset_index(drop=True)


def _mean_std(groups) -> pd.DataFrame:
    stats = groups.agg(["mean", "std"])
    stats.columns = [f"{metric}_{stat}" for metric, stat in stats.columns]
    return stats


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of every numeric column, per series and target sparsity; `n` runs each."""
    keys = [*_labels(runs), results.STAGE, results.TARGET]
    metrics = [c for c in runs.select_dtypes("number").columns if c not in (*keys, *results.NOT_METRICS)]
    groups = runs.groupby(keys, sort=False)
    table = pd.concat([groups[RUN].nunique().rename(N), _mean_std(groups[metrics])], axis=1).reset_index()
    return _order(table, results.STAGE)


def method_summary(runs: pd.DataFrame, task: Task) -> pd.DataFrame:
    """`run_summary` of every run, then mean and std over seeds per series; `n` runs each."""
    keys = _labels(runs)
    per_run = pd.DataFrame([{**rows.iloc[0][keys].to_dict(), **run_summary(rows, task)}
                            for _, rows in runs.groupby(RUN, sort=False)])
    groups = per_run.groupby(keys, sort=False)
    table = pd.concat([groups.size().rename(N), _mean_std(groups)], axis=1).reset_index()
    return _order(table)


def layer_summary(layers: pd.DataFrame) -> pd.DataFrame:
    """Final sparsity per layer (rows, in model order) and series (columns), mean over seeds."""
    if layers.empty:
        return pd.DataFrame()
    return layers.groupby([results.LAYER, SERIES], sort=False)[results.LAYER_SPARSITY].mean().unstack(SERIES)


def beyond_spread(best: tuple[float, float], other: tuple[float, float], task: Task) -> bool:
    """Whether `other` (mean, std) is worse than `best` (by the task's metric) by more than the two spreads over
    seeds together.

    Without a spread (one seed) nothing is beyond it.
    """
    (mb, sb), (mo, so) = best, other
    return not (pd.isna(sb) or pd.isna(so)) and task.metric.shortfall(mb, mo) > sb + so


def value_at(curve: pd.DataFrame, sparsity: float, column: str) -> float:
    """A series' mean `column` at axis `sparsity`, read linearly between the points of its curve."""
    points = curve.sort_values(mean(results.AXIS))
    return float(np.interp(sparsity, points[mean(results.AXIS)], points[mean(column)]))


def separation(agg: pd.DataFrame, task: Task) -> pd.DataFrame:
    """Per series, the test metric after and the validation metric before fine-tuning at the highest axis
    sparsity every series reaches (each curve read between its points), best after fine-tuning first."""
    test, before = results.test(task.metric.name), results.before_ft(task.metric.name)
    common = agg.groupby(SERIES, sort=False)[mean(results.AXIS)].max().min()
    rows = [{SERIES: series, results.LABELS[1]: curve[results.LABELS[1]].iloc[0], results.AXIS: common,
             test: value_at(curve, common, test),
             before: value_at(curve, common, before) if mean(before) in curve else np.nan}
            for series, curve in agg.groupby(SERIES, sort=False)]
    order = pd.DataFrame(rows).sort_values(test, ascending=not task.metric.higher_is_better, kind="stable")
    return order.reset_index(drop=True)


def protocol_by_series(protocols: pd.DataFrame) -> pd.DataFrame:
    """Per series, how its runs were made (`gather.protocol_row`); differing values of its runs joined by " | "."""
    if protocols.empty:
        return pd.DataFrame()
    fields = [c for c in protocols.columns if c not in (RUN, SERIES)]
    return protocols.groupby(SERIES, sort=False)[fields].agg(lambda v: " | ".join(dict.fromkeys(map(str, v))))
