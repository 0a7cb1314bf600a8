"""The comparison as markdown: per group of runs (one task, model and dataset) the metric, separation, summary,
scratch-control, deployment and protocol tables, and the document that joins the groups. Every ranking reads the
task's metric, its direction and tolerance, and ranks the runs of one group only."""

import numpy as np
import pandas as pd

from prunelab import results
from prunelab.analysis.aggregate import BASE, N, RETRAIN, SERIES, beyond_spread, mean, separation, std
from prunelab.labels import STRUCTURAL
from prunelab.tasks import Task

FAMILY = results.LABELS[1]
FINETUNE = "finetune"


def _cell(mid: float, spread: float, scale: float = 100, digits: int = 2) -> str:
    if pd.isna(mid):
        return ""
    return f"{scale * mid:.{digits}f}" + ("" if pd.isna(spread) else f" ± {scale * spread:.{digits}f}")


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(map(str, line)) + " |" for line in lines)


def metric_table(agg: pd.DataFrame, task: Task) -> str:
    """Markdown: series x target sparsity, the test metric as "mean ± std"; per target the best in bold (ties
    too), and `▼` where a series is worse than the best by more than their spreads over seeds together."""
    metric, column = task.metric, results.test(task.metric.name)
    targets = sorted(agg[results.TARGET].unique())
    header = ["method", FAMILY, N, *("dense" if t == 0 else f"{100 * t:g}%" for t in targets)]
    stats = agg.set_index([SERIES, results.TARGET])[[mean(column), std(column)]]
    best = {t: metric.best_label(stats.xs(t, level=1)[mean(column)]) for t in targets}
    rows = []
    for series, curve in agg.groupby(SERIES, sort=False):
        cells = []
        for t in targets:
            if (series, t) not in stats.index:
                cells.append("")
                continue
            mine, top = tuple(stats.loc[(series, t)]), tuple(stats.loc[(best[t], t)])
            cell = _cell(*mine, metric.scale)
            worse = " ▼" if beyond_spread(top, mine, task) else ""
            cells.append(f"**{cell}**" if mine[0] == top[0] else cell + worse)
        rows.append([series, curve[FAMILY].iloc[0], int(curve[N].max()), *cells])
    return _markdown_table(header, rows)


def separation_text(table: pd.DataFrame, task: Task) -> str:
    """Markdown: the separation table and the gap between the best and the worst family."""
    metric = task.metric
    test, before = results.test(metric.name), results.before_ft(metric.name)
    best_of = (lambda v: v.max()) if metric.higher_is_better else (lambda v: v.min())
    family = table.groupby(FAMILY, sort=False)[test].agg(best_of)
    top, bottom = metric.best_label(family), metric.best_label(-family)
    gap = metric.scale * metric.shortfall(family[top], family[bottom])
    unit = "points" if metric.percent else metric.name
    rows = [[r[SERIES], r[FAMILY], f"{metric.scale * r[test]:.2f}", f"{metric.scale * r[before]:.2f}"]
            for _, r in table.iterrows()]
    verdict = (f"best family {top}, worst {bottom}, {gap:.1f} {unit} apart after fine-tuning" if len(family) > 1
               else f"one family ({top})")
    head = (f"At {100 * table[results.AXIS].iloc[0]:.2f}% of the parameters pruned ({results.AXIS}), the highest "
            f"sparsity every method reaches (each curve read between its points), mean over seeds: {verdict}.")
    header = ["method", FAMILY, f"{test}{metric.unit}", "before fine-tuning (val" + (", %" if metric.percent else "") + ")"]
    return head + "\n\n" + _markdown_table(header, rows)


def scratch_table(agg: pd.DataFrame, task: Task) -> str | None:
    """Markdown: per scratch control and target, fine-tuning's metric minus the control's, and whether the
    difference is beyond the spread over seeds (larger than the sum of the two stds); None without controls."""
    if RETRAIN not in agg or not (agg[RETRAIN] != FINETUNE).any():
        return None
    metric, column = task.metric, results.test(task.metric.name)
    rows = []
    for (base, retrain), control in agg[agg[RETRAIN] != FINETUNE].groupby([BASE, RETRAIN], sort=False):
        tuned = agg[(agg[BASE] == base) & (agg[RETRAIN] == FINETUNE)].set_index(results.TARGET)
        for _, c in control[control[results.STAGE] > 0].iterrows():
            t = c[results.TARGET]
            if t not in tuned.index:
                continue
            f = tuned.loc[t]
            lag, spread = metric.shortfall(f[mean(column)], c[mean(column)]), f[std(column)] + c[std(column)]
            diff = f[mean(column)] - c[mean(column)]  # how far the control is behind fine-tuning, in its direction
            verdict = ("fine-tuning better" if lag > spread else f"{retrain} better" if -lag > spread
                       else "within the spread")
            rows.append([base, retrain, f"{100 * t:g}%", _cell(f[mean(column)], f[std(column)], metric.scale),
                         _cell(c[mean(column)], c[std(column)], metric.scale), f"{metric.scale * diff:+.2f}", verdict])
    header = ["method", "control", "target", "fine-tuned", f"control {metric.name}", "difference", "beyond the spread?"]
    return _markdown_table(header, rows) if rows else None


def summary_table(summary: pd.DataFrame, task: Task) -> str:
    """Markdown: per series, the `run_summary` scores as "mean ± std" (the metric in its units, sparsities in %)."""
    metric = task.metric
    name, unit, scale = metric.name, metric.unit, metric.scale
    columns = {results.dense_score(name): (f"dense {name}{unit}", scale, 2),
               results.final_score(name): (f"final {name}{unit}", scale, 2),
               results.within_score(metric.tolerance_label): (
                   f"max {results.AXIS} within {metric.tolerance_text} of dense (%)", 100, 2),
               results.auc_score(name): (f"AUC {name} x {results.AXIS}", 1, 3),
               results.TOTAL_TIME: ("wall time (s)", 1, 1)}
    header = ["method", N, *(title for title, _, _ in columns.values())]
    rows = [[r[SERIES], r[N], *(_cell(r[mean(c)], r[std(c)], s, digits) for c, (_, s, digits) in columns.items())]
            for _, r in summary.iterrows()]
    return _markdown_table(header, rows)


RUNTIMES = (("torch", "PyTorch"), ("onnx", "ONNX Runtime"))


def _onnx_batches(agg: pd.DataFrame) -> list[int]:
    prefix, suffix = results.onnx_latency("onnx", 0)[:-len("0_ms")], mean("_ms")
    return sorted({int(c[len(prefix):-len(suffix)]) for c in agg if c.startswith(prefix) and c.endswith(suffix)})


def deployment_table(agg: pd.DataFrame) -> str | None:
    """Markdown: per series, the stage with ONNX latencies (the final model): the MAC speedup theory promises
    beside measured CPU latency in PyTorch and in ONNX Runtime per batch size; None when no run has them."""
    batches = _onnx_batches(agg)
    timed = (agg[agg[[mean(results.onnx_latency("onnx", b)) for b in batches]].notna().any(axis=1)] if batches
             else agg.iloc[:0])
    if timed.empty:
        return None
    header = ["method", f"{results.AXIS} (%)", "theoretical speedup",
              *(f"{title} b{b} (ms)" for b in batches for _, title in RUNTIMES)]
    rows = [[r[SERIES], _cell(r[mean(results.AXIS)], r[std(results.AXIS)]),
             _cell(r.get(mean(results.SPEEDUP), np.nan), r.get(std(results.SPEEDUP), np.nan), 1),
             *(_cell(r[mean(results.onnx_latency(rt, b))], r[std(results.onnx_latency(rt, b))], 1, 3)
               for b in batches for rt, _ in RUNTIMES)] for _, r in timed.iterrows()]
    return _markdown_table(header, rows)


def intro(agg: pd.DataFrame, task: Task) -> str:
    """What the metric table shows; that structural targets are channel ratios only when a structural method ran."""
    metric = task.metric
    better = "higher" if metric.higher_is_better else "lower"
    text = (f"{results.test(metric.name).replace('_', ' ').capitalize()}{metric.unit} per target sparsity ({better} "
            "is better), mean ± std over seeds (n runs); the best per target in bold, ▼ worse than the best by more "
            "than both spreads over seeds together.")
    if STRUCTURAL in set(agg[FAMILY]):
        text += (" Structural targets are channel ratios: the tables below compare at equal parameter sparsity "
                 f"({results.AXIS}).")
    return text


def section(title: str, agg: pd.DataFrame, summary: pd.DataFrame, task: Task) -> str:
    """The comparison of one group of runs (one task, model and dataset) as markdown, headed by `title`: the
    metric table, the separation, the summary table, scratch controls and deployment where there are any."""
    metric = task.metric
    parts = [f"## {title}", intro(agg, task), metric_table(agg, task), separation_text(separation(agg, task), task),
             f"Per method: the highest {results.AXIS} within {metric.tolerance_text} of the dense {metric.name}, and "
             f"the area under {metric.name} vs {results.AXIS} (trapezoid from 0 to the last sparsity reached).",
             summary_table(summary, task)]
    controls = scratch_table(agg, task)
    if controls:
        parts += ["Fine-tuning against training the pruned network from scratch (Liu et al. 2019), per target: "
                  "fine-tuned minus control, beyond the spread when larger than the sum of the stds.",
                  controls]
    deployed = deployment_table(agg)
    if deployed:
        parts += ["The final models on CPU (one thread, median ms per batch): PyTorch and ONNX Runtime, beside the "
                  "speedup the nonzero MACs promise over dense.", deployed]
    return "\n\n".join(parts)


def document(sections: list[str], skipped: list[tuple[str, str]]) -> str:
    """The comparison as one markdown document: a section per group, then every run left out and why."""
    parts = list(sections)
    if len(sections) > 1:
        parts.insert(0, f"{len(sections)} groups of runs (task / model / dataset), each compared on its own: "
                        "methods are ranked within a group, never across groups.")
    if skipped:
        parts.append(f"Left out ({len(skipped)}):\n\n" + "\n".join(f"- `{run}`: {why}" for run, why in skipped))
    return "\n\n".join(parts) + "\n"


def protocol_table(protocol: pd.DataFrame) -> str:
    """Markdown: the protocol of every series (code, libraries, device, data fingerprint, budget)."""
    header = ["method", *protocol.columns]
    return _markdown_table(header, [[series, *row] for series, row in protocol.iterrows()])
