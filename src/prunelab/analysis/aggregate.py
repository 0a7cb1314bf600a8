"""Statistics over seeds: each series' mean and std per target, per-run scores averaged, the series'
order, the per-layer sparsity, and reading curves at a common sparsity.

A run is one `results.csv` (one row per stage); `prunelab.analysis.gather` collects runs into a sweep
whose runs of the same method and settings, seeds aside, form a *series*. The per-run scores
(`prunelab.scores`) are the ones logged to W&B as run summary scalars and the ones averaged here, so both agree.
"""

import numpy as np
import pandas as pd

from prunelab.labels import FAMILIES
from prunelab.scores import ACC, run_summary

NOT_METRICS = ("seed", "stage", "target_sparsity", "epoch")
BEFORE = "acc_before_ft"  # validation accuracy right after pruning, before fine-tuning


def _labels(table: pd.DataFrame) -> list[str]:
    return [c for c in ("series", "family", "method", "model", "dataset", "schedule", "base", "retrain") if c in table]


def _order(table: pd.DataFrame, *within: str) -> pd.DataFrame:
    """Families in FAMILIES order (others last), then series by name."""
    rank = table["family"].map({f: i for i, f in enumerate(FAMILIES)}).fillna(len(FAMILIES))
    ordered = table.assign(_rank=rank).sort_values(["_rank", "series", *within], kind="stable")
    return ordered.drop(columns="_rank").reset_index(drop=True)


def _mean_std(groups) -> pd.DataFrame:
    stats = groups.agg(["mean", "std"])
    stats.columns = [f"{metric}_{stat}" for metric, stat in stats.columns]
    return stats


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of every numeric column, per series and target sparsity; `n` runs each."""
    keys = [*_labels(runs), "stage", "target_sparsity"]
    metrics = [c for c in runs.select_dtypes("number").columns if c not in (*keys, *NOT_METRICS)]
    groups = runs.groupby(keys, sort=False)
    table = pd.concat([groups["run"].nunique().rename("n"), _mean_std(groups[metrics])], axis=1).reset_index()
    return _order(table, "stage")


def method_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """`run_summary` of every run, then mean and std over seeds per series; `n` runs each."""
    keys = _labels(runs)
    per_run = pd.DataFrame([{**rows.iloc[0][keys].to_dict(), **run_summary(rows)}
                            for _, rows in runs.groupby("run", sort=False)])
    groups = per_run.groupby(keys, sort=False)
    table = pd.concat([groups.size().rename("n"), _mean_std(groups)], axis=1).reset_index()
    return _order(table)


def layer_summary(layers: pd.DataFrame) -> pd.DataFrame:
    """Final sparsity per layer (rows, in model order) and series (columns), mean over seeds."""
    if layers.empty:
        return pd.DataFrame()
    return layers.groupby(["layer", "series"], sort=False)["sparsity"].mean().unstack("series")


def beyond_spread(best: tuple[float, float], other: tuple[float, float]) -> bool:
    """Whether `other` (mean, std) is below `best` by more than the two spreads over seeds together.

    Without a spread (one seed) nothing is beyond it.
    """
    (mb, sb), (mo, so) = best, other
    return not (pd.isna(sb) or pd.isna(so)) and mb - mo > sb + so


def accuracy_at(curve: pd.DataFrame, sparsity: float, column: str) -> float:
    """A series' mean `column` at `sparsity`, read linearly between the points of its curve."""
    points = curve.sort_values("sparsity_mean")
    return float(np.interp(sparsity, points["sparsity_mean"], points[f"{column}_mean"]))


def separation(agg: pd.DataFrame, acc: str = ACC) -> pd.DataFrame:
    """Per series, accuracy after and before fine-tuning at the highest parameter sparsity every series
    reaches (each curve read between its points), best after fine-tuning first."""
    common = agg.groupby("series", sort=False)["sparsity_mean"].max().min()
    rows = [{"series": series, "family": curve["family"].iloc[0], "sparsity": common,
             acc: accuracy_at(curve, common, acc),
             BEFORE: accuracy_at(curve, common, BEFORE) if f"{BEFORE}_mean" in curve else np.nan}
            for series, curve in agg.groupby("series", sort=False)]
    return pd.DataFrame(rows).sort_values(acc, ascending=False, kind="stable").reset_index(drop=True)


def protocol_by_series(protocols: pd.DataFrame) -> pd.DataFrame:
    """Per series, how its runs were made (`gather.protocol_row`); differing values of its runs joined by " | "."""
    if protocols.empty:
        return pd.DataFrame()
    fields = [c for c in protocols.columns if c not in ("run", "series")]
    return protocols.groupby("series", sort=False)[fields].agg(lambda v: " | ".join(dict.fromkeys(map(str, v))))
