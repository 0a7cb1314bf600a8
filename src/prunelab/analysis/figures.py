"""The comparison's figures: the task's metric against sparsity per series (mean ± std), and the final sparsity
per layer.

Every series is drawn in its family's colour map and line style, so families stand apart at a glance.
"""

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from prunelab import results
from prunelab.analysis.aggregate import BASE, N, RETRAIN, SERIES, layer_summary, mean, std
from prunelab.labels import FAMILIES
from prunelab.tasks import Task

FAMILY = results.LABELS[1]
# The x-axis of the second panel: the first column present, best first.
SECOND_AXES = (results.SPEEDUP, results.NONZERO_MACS, results.COMPRESSION, results.NONZERO_PARAMS)
# Per family: a colour map for its methods' shades and a line style.
FAMILY_STYLES = dict(zip(FAMILIES, [("Greys", ":"), ("Blues", "-"), ("Oranges", "-"), ("Reds", "-"),
                                    ("Greens", "--"), ("Purples", "-")], strict=True))
OTHER_STYLE = ("Purples", "-.")
# Training from scratch (Liu et al. 2019) is drawn in its method's colour, in its own line style.
RETRAIN_STYLES = {"scratch_e": (0, (5, 1.5)), "scratch_b": (0, (1, 1))}
MARKERS = "osD^v<>p"


def series_styles(table: pd.DataFrame) -> dict[str, dict]:
    """Colour, line style and marker per series: one colour map and line style per family; a scratch
    control takes its method's colour and the line style of its retraining."""
    from matplotlib import colormaps

    table = table if BASE in table else table.assign(**{BASE: table[SERIES], RETRAIN: "finetune"})
    styles = {}
    for family, rows in table.drop_duplicates(SERIES).groupby(FAMILY, sort=False):
        cmap, line = FAMILY_STYLES.get(family, OTHER_STYLE)
        bases = list(dict.fromkeys(rows[BASE]))
        for i, (series, base, retrain) in enumerate(zip(rows[SERIES], rows[BASE], rows[RETRAIN])):
            j = bases.index(base)
            shade = 0.75 if len(bases) == 1 else 0.5 + 0.45 * j / (len(bases) - 1)
            styles[series] = {"color": colormaps[cmap](shade), "linestyle": RETRAIN_STYLES.get(retrain, line),
                              "marker": MARKERS[i % len(MARKERS)]}
    return styles


def second_axis(agg: pd.DataFrame) -> str | None:
    """The column for the second panel's x-axis: speedup, MACs, compression or nonzero parameters."""
    present = [x for x in SECOND_AXES if mean(x) in agg and agg[mean(x)].notna().any()]
    return present[0] if present else None


def remaining(sparsity: pd.Series) -> pd.Series:
    """Percent of the dense model's parameters left, floored at 0.001% so that a log axis can show it."""
    return (100 * (1 - sparsity)).clip(lower=1e-3)


def _panel(ax, agg: pd.DataFrame, x: str, y: str, styles: dict, task: Task) -> None:
    scale = task.metric.scale
    for series, curve in agg.groupby(SERIES, sort=False):
        mid, spread = scale * curve[mean(y)], scale * curve[std(y)].fillna(0)
        xs = remaining(curve[mean(results.AXIS)]) if x == results.AXIS else curve[mean(x)]
        ax.plot(xs, mid, label=series, markersize=4, **styles[series])
        ax.fill_between(xs, mid - spread, mid + spread, color=styles[series]["color"], alpha=0.2, linewidth=0)
    ax.set_xscale("log")
    if task.metric.log_axis:
        ax.set_yscale("log")
    if x == results.AXIS:  # sparser to the right, on a log scale of what is left: where methods part
        ax.invert_xaxis()
    ax.set_xlabel(results.AXIS_LABEL if x == results.AXIS else x.replace("_", " "))
    ax.set_ylabel(y.replace("_", " ") + task.metric.unit)
    ax.grid(alpha=0.3)


def _title(agg: pd.DataFrame) -> str:
    parts = [", ".join(map(str, agg[c].unique())) for c in results.LABELS[2:6] if c in agg]
    n = agg[N]
    seeds = f"{n.min()}" if n.min() == n.max() else f"{n.min()}-{n.max()}"
    return " / ".join(parts) + f": mean ± std over {seeds} seeds"


def plot_comparison(agg: pd.DataFrame, task: Task) -> Figure:
    """The task's test metric after fine-tuning vs the parameter sparsity reached (`results.AXIS`), one line per
    series (mean ± std band); beside it the validation metric right after pruning (the damage each criterion
    does) and the test metric vs `second_axis`. Every curve is placed by the parameter sparsity it reached, so
    a structural method's channel ratio and an unstructured target share the axis."""
    test, before = results.test(task.metric.name), results.before_ft(task.metric.name)
    panels = [(results.AXIS, test)] + ([(results.AXIS, before)] if mean(before) in agg else [])
    if (x2 := second_axis(agg)) is not None:
        panels.append((x2, test))
    fig = Figure(figsize=(5.5 * len(panels) + 1, 4.8), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    styles = series_styles(agg)
    for ax, (x, y) in zip(axes, panels):
        _panel(ax, agg, x, y, styles, task)
    for ax, (_, y) in zip(axes, panels):
        ax.set_title("before fine-tuning (validation)" if y == before else "after fine-tuning", fontsize="medium")
    axes[0].legend(fontsize="small")
    fig.suptitle(_title(agg))
    return fig


def plot_layers(layers: pd.DataFrame) -> Figure:
    """Final sparsity of each layer per series (mean over seeds), as grouped bars."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    if layers.empty:
        ax.text(0.5, 0.5, "no per-layer sparsity in these runs", ha="center", transform=ax.transAxes)
        return fig
    table, styles = layer_summary(layers), series_styles(layers)
    width = 0.8 / len(table.columns)
    for i, series in enumerate(table.columns):
        ax.bar(np.arange(len(table)) + i * width, 100 * table[series], width, label=series,
               color=styles[series]["color"])
    ax.set_xticks(np.arange(len(table)) + 0.4 - width / 2, table.index, rotation=30, ha="right")
    ax.set_ylabel("final sparsity (%)")
    ax.legend(fontsize="small")
    return fig
