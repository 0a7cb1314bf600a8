"""The comparison's figures: the task's metric against sparsity per series (mean ± std), a row of panels per
group of runs, and the final sparsity per layer.

Every series is drawn in its family's colour map and line style, so families stand apart at a glance.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, MaxNLocator, NullFormatter, NullLocator

from prunelab import results
from prunelab.analysis.aggregate import BASE, N, RETRAIN, SERIES, layer_summary, mean, std
from prunelab.labels import FAMILIES
from prunelab.tasks import Task

FAMILY, SCHEDULE = results.LABELS[1], results.LABELS[5]
# The dense model's value: a reference line in every panel.
DENSE, DENSE_STYLE = "dense", {"color": "0.25", "linestyle": (0, (4, 3)), "linewidth": 1.0}
# At most about this many ticks at the targets on a "parameters remaining" axis.
MAX_TICKS = 8
# The y-range of a metric that counts samples spans at least this many samples of the split drawn.
MIN_SAMPLES = 5
SPLIT_NAMES = {"val": "validation", "test": "test"}
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


@dataclass(frozen=True)
class Curves:
    """One row of the figure: a group's title, its per-target table (`aggregate`), its task, and the samples of
    its evaluated splits (`gather.Sweep.samples`: {"val": n, "test": n}; empty when the runs did not record them)."""

    title: str
    agg: pd.DataFrame
    task: Task
    samples: dict[str, int] = field(default_factory=dict)


def dense_line(agg: pd.DataFrame, y: str) -> tuple[float, str] | None:
    """The dense model's mean `y` (stage 0) and its legend entry: `dense`, or what it averages when the series'
    dense models differ (they share one when they share the dense model); None when no stage 0 is drawn."""
    values = agg.loc[agg[results.STAGE] == 0, mean(y)].dropna()
    if values.empty:
        return None
    return float(values.mean()), DENSE if np.ptp(values) < 1e-12 else f"{DENSE} (mean over {len(values)} methods)"


def target_ticks(agg: pd.DataFrame) -> list[float]:
    """The x ticks of a "parameters remaining" axis: per target, the percent left at the sparsity the series
    reached (their median), dense included, thinned to at most about MAX_TICKS so that their labels do not
    overlap on the log axis."""
    reached = sorted(remaining(agg.groupby(results.TARGET)[mean(results.AXIS)].median()), reverse=True)
    gap = np.log10(reached[0] / reached[-1]) / MAX_TICKS
    kept = [reached[0]]
    for tick in reached[1:]:
        if (step := np.log10(kept[-1] / tick)) > 0 and step >= gap:
            kept.append(tick)
    return [float(t) for t in kept]


def tick_label(percent: float) -> str:
    return f"{percent:.3g}"


def resolution(task: Task, samples: dict[str, int], split: str) -> float | None:
    """One sample of `split` in the metric's shown units (100 / N points of accuracy), for a metric that counts
    samples (shown in %); None for other metrics, or when the split's size was not recorded.

    N is the size of the split the runs were measured on, as protocol.json records it after training (the
    fewest over a group's runs): the data the metric was computed from, not a guess from its values."""
    n = samples.get(split)
    return task.metric.scale / n if task.metric.percent and n else None


def widened(lo: float, hi: float, span: float, top: float) -> tuple[float, float]:
    """(lo, hi) widened about its middle to at least `span`, kept within [0, top]."""
    if hi - lo >= span:
        return lo, hi
    start = min(max((lo + hi) / 2 - span / 2, 0.0), max(top - span, 0.0))
    return start, min(start + span, top)


def unjoined(xs: pd.Series, *ys: pd.Series) -> list[np.ndarray]:
    """`xs` and `ys` with a NaN between consecutive points at the same x, so that a line is not drawn between them:
    two targets that reach the same sparsity (a whole layer, say) are two points, not a vertical segment."""
    xs = np.asarray(xs, dtype=float)
    cut = np.flatnonzero(np.isclose(xs[1:], xs[:-1], rtol=1e-9, atol=0)) + 1
    return [np.insert(np.asarray(v, dtype=float), cut, np.nan) for v in (xs, *ys)]


def _narrow_log_ticks(ax) -> None:
    """Plain tick labels on a log x-axis that spans less than a decade (speedups of 1.1x-1.4x, say), where the
    default labels every minor tick in scientific notation and they overlap."""
    low, high = ax.get_xlim()
    if low > 0 and high / low < 10:
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.xaxis.set_major_formatter(FormatStrFormatter("%.3g"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())


def _panel(ax, agg: pd.DataFrame, x: str, y: str, styles: dict, task: Task) -> None:
    scale = task.metric.scale
    for series, curve in agg.groupby(SERIES, sort=False):
        mid, spread = scale * curve[mean(y)], scale * curve[std(y)].fillna(0)
        xs = remaining(curve[mean(results.AXIS)]) if x == results.AXIS else curve[mean(x)]
        xs, mid, spread = unjoined(xs, mid, spread)
        ax.plot(xs, mid, label=series, markersize=4, **styles[series])
        ax.fill_between(xs, mid - spread, mid + spread, color=styles[series]["color"], alpha=0.2, linewidth=0)
    if (dense := dense_line(agg, y)) is not None:
        ax.axhline(scale * dense[0], label=dense[1], **DENSE_STYLE)
    ax.set_xscale("log")
    if task.metric.log_axis:
        ax.set_yscale("log")
    if x == results.AXIS:  # sparser to the right, on a log scale of what is left: where methods part
        ticks = target_ticks(agg)
        ax.set_xticks(ticks, [tick_label(t) for t in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.invert_xaxis()
    else:
        _narrow_log_ticks(ax)
    ax.set_xlabel(results.AXIS_LABEL if x == results.AXIS else x.replace("_", " "))
    ax.set_ylabel(y.replace("_", " ") + task.metric.unit)
    ax.grid(alpha=0.3)


def _show_resolution(ax, step: float | None, split: str, task: Task) -> None:
    """y-limits no narrower than MIN_SAMPLES samples of `split`, and how much one sample is, under the y label."""
    if step is None or task.metric.log_axis:
        return
    ax.set_ylim(*widened(*ax.get_ylim(), MIN_SAMPLES * step, task.metric.scale))
    ax.set_ylabel(f"{ax.get_ylabel()}\n1 {SPLIT_NAMES[split]} sample = {step:.2g} points")


def _title(agg: pd.DataFrame, title: str) -> str:
    schedules = ", ".join(map(str, agg[SCHEDULE].unique())) if SCHEDULE in agg else ""
    low, high = int(agg[N].min()), int(agg[N].max())
    seeds = "1 seed" if high == 1 else f"{low} seeds" if low == high else f"{low}-{high} seeds"
    return title + (f" / {schedules}" if schedules else "") + f": mean ± std over {seeds}"


def panels(agg: pd.DataFrame, task: Task) -> list[tuple[str, str, str, str]]:
    """A group's panels: (x, y, the split y is measured on, title). The test metric after fine-tuning vs the
    parameters remaining; the validation metric right after pruning, before fine-tuning (the damage each
    criterion does); the test metric vs `second_axis`."""
    name = task.metric.text()
    test, before = results.test(task.metric.name), results.before_ft(task.metric.name)
    found = [(results.AXIS, test, "test", f"test {name} after fine-tuning")]
    if mean(before) in agg:
        found.append((results.AXIS, before, "val", f"validation {name} right after pruning, before fine-tuning"))
    if (x2 := second_axis(agg)) is not None:
        found.append((x2, test, "test", f"test {name} after fine-tuning, by {x2.replace('_', ' ')}"))
    return found


def plot_comparison(groups: list[Curves]) -> Figure:
    """One row of panels per group (`panels`), one line per series (mean ± std band), the dense model's value as a
    dashed reference line. Every curve is placed by the parameter sparsity it reached, so a structural method's
    channel ratio and an unstructured target share the axis; its ticks are at the sparsities the targets reached.
    The y-range of a metric that counts samples is never narrower than MIN_SAMPLES samples of the split drawn
    (`resolution`), so that one sample does not look like a collapse."""
    layout = [panels(g.agg, g.task) for g in groups]
    width = max(map(len, layout))
    fig = Figure(figsize=(5.5 * width + 1, 4.8 * len(groups)), layout="constrained")
    rows = fig.subfigures(len(groups), 1, squeeze=False)[:, 0]
    for row, group, found in zip(rows, groups, layout):
        axes = row.subplots(1, width, squeeze=False)[0]
        for spare in axes[len(found):]:  # a row with fewer panels keeps the others' widths
            spare.remove()
        styles = series_styles(group.agg)
        for ax, (x, y, split, title) in zip(axes, found):
            _panel(ax, group.agg, x, y, styles, group.task)
            _show_resolution(ax, resolution(group.task, group.samples, split), split, group.task)
            ax.set_title(title, fontsize="medium")
        axes[0].legend(fontsize="small")
        row.suptitle(_title(group.agg, group.title))
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
