"""Comparing methods: score each run, average over seeds, draw and tabulate.

A run is one `results.csv` (one row per stage); `prunelab.analysis.gather` collects runs into a sweep
whose runs of the same method and settings, seeds aside, form a *series*. Every table and figure shows
a series' mean and standard deviation over its seeds. The per-run scores (`prunelab.scores`) are the
ones logged to W&B as run summary scalars and the ones the sweep tables average, so both agree.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from prunelab.analysis.gather import Sweep
from prunelab.labels import FAMILIES
from prunelab.summary import run_summary
from prunelab.tasks import CLASSIFICATION

ACC, TOLERANCE = "test_acc", CLASSIFICATION.metric.tolerance

# The x-axis of the second panel: the first column present, best first.
SECOND_AXES = ("theoretical_speedup", "nonzero_macs", "compression", "nonzero_params")
# Per family: a colour map for its methods' shades and a line style.
FAMILY_STYLES = dict(zip(FAMILIES, [("Greys", ":"), ("Blues", "-"), ("Oranges", "-"), ("Reds", "-"),
                                    ("Greens", "--"), ("Purples", "-")], strict=True))
OTHER_STYLE = ("Purples", "-.")
# Training from scratch (Liu et al. 2019) is drawn in its method's colour, in its own line style.
RETRAIN_STYLES = {"scratch_e": (0, (5, 1.5)), "scratch_b": (0, (1, 1))}
MARKERS = "osD^v<>p"
NOT_METRICS = ("seed", "stage", "target_sparsity", "epoch")
BEFORE = "acc_before_ft"  # validation accuracy right after pruning, before fine-tuning


# -- aggregation -------------------------------------------------------------------------------
def _labels(table: pd.DataFrame) -> list[str]:
    return [c for c in ("series", "family", "method", "model", "dataset", "schedule", "base", "retrain") if c in table]


def _order(table: pd.DataFrame, *within: str) -> pd.DataFrame:
    """Families in FAMILY_STYLES order (others last), then series by name."""
    rank = table["family"].map({f: i for i, f in enumerate(FAMILY_STYLES)}).fillna(len(FAMILY_STYLES))
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
    per_run = pd.DataFrame([{**rows.iloc[0][keys].to_dict(), **run_summary(rows, CLASSIFICATION)}
                            for _, rows in runs.groupby("run", sort=False)])
    groups = per_run.groupby(keys, sort=False)
    table = pd.concat([groups.size().rename("n"), _mean_std(groups)], axis=1).reset_index()
    return _order(table)


# -- figures -----------------------------------------------------------------------------------
def series_styles(table: pd.DataFrame) -> dict[str, dict]:
    """Colour, line style and marker per series: one colour map and line style per family; a scratch
    control takes its method's colour and the line style of its retraining."""
    from matplotlib import colormaps

    table = table if "base" in table else table.assign(base=table["series"], retrain="finetune")
    styles = {}
    for family, rows in table.drop_duplicates("series").groupby("family", sort=False):
        cmap, line = FAMILY_STYLES.get(family, OTHER_STYLE)
        bases = list(dict.fromkeys(rows["base"]))
        for i, (series, base, retrain) in enumerate(zip(rows["series"], rows["base"], rows["retrain"])):
            j = bases.index(base)
            shade = 0.75 if len(bases) == 1 else 0.5 + 0.45 * j / (len(bases) - 1)
            styles[series] = {"color": colormaps[cmap](shade), "linestyle": RETRAIN_STYLES.get(retrain, line),
                              "marker": MARKERS[i % len(MARKERS)]}
    return styles


def second_axis(agg: pd.DataFrame) -> str | None:
    """The column for the second panel's x-axis: speedup, MACs, compression or nonzero parameters."""
    present = [x for x in SECOND_AXES if f"{x}_mean" in agg and agg[f"{x}_mean"].notna().any()]
    return present[0] if present else None


def remaining(sparsity: pd.Series) -> pd.Series:
    """Percent of the dense model's weights left, floored at 0.001% so that a log axis can show it."""
    return (100 * (1 - sparsity)).clip(lower=1e-3)


def _panel(ax, agg: pd.DataFrame, x: str, acc: str, styles: dict) -> None:
    for series, curve in agg.groupby("series", sort=False):
        mean, std = 100 * curve[f"{acc}_mean"], 100 * curve[f"{acc}_std"].fillna(0)
        xs = remaining(curve["sparsity_mean"]) if x == "sparsity" else curve[f"{x}_mean"]
        ax.plot(xs, mean, label=series, markersize=4, **styles[series])
        ax.fill_between(xs, mean - std, mean + std, color=styles[series]["color"], alpha=0.2, linewidth=0)
    ax.set_xscale("log")
    if x == "sparsity":  # sparser to the right, on a log scale of what is left: where methods part
        ax.invert_xaxis()
    ax.set_xlabel("weights remaining (%)" if x == "sparsity" else x.replace("_", " "))
    ax.set_ylabel(f"{acc.replace('_', ' ')} (%)")
    ax.grid(alpha=0.3)


def _title(agg: pd.DataFrame) -> str:
    parts = [", ".join(map(str, agg[c].unique())) for c in ("model", "dataset", "schedule") if c in agg]
    n = agg["n"]
    seeds = f"{n.min()}" if n.min() == n.max() else f"{n.min()}-{n.max()}"
    return " / ".join(parts) + f": mean ± std over {seeds} seeds"


def plot_comparison(agg: pd.DataFrame, acc: str = ACC) -> Figure:
    """Accuracy after fine-tuning vs the parameter sparsity reached, one line per series (mean ± std band);
    beside it accuracy right after pruning (`acc_before_ft`: the damage each criterion does, on the
    validation split) and accuracy vs `second_axis`. Every curve is placed by the sparsity it reached, so a
    structural method's channel ratio and an unstructured target compare like with like."""
    panels = [("sparsity", acc), ("sparsity", BEFORE)] if f"{BEFORE}_mean" in agg else [("sparsity", acc)]
    if (x2 := second_axis(agg)) is not None:
        panels.append((x2, acc))
    fig = Figure(figsize=(5.5 * len(panels) + 1, 4.8), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    styles = series_styles(agg)
    for ax, (x, y) in zip(axes, panels):
        _panel(ax, agg, x, y, styles)
    for ax, (_, y) in zip(axes, panels):
        ax.set_title("before fine-tuning (validation)" if y == BEFORE else "after fine-tuning", fontsize="medium")
    axes[0].legend(fontsize="small")
    fig.suptitle(_title(agg))
    return fig


def layer_summary(layers: pd.DataFrame) -> pd.DataFrame:
    """Final sparsity per layer (rows, in model order) and series (columns), mean over seeds."""
    if layers.empty:
        return pd.DataFrame()
    return layers.groupby(["layer", "series"], sort=False)["sparsity"].mean().unstack("series")


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


# -- tables ------------------------------------------------------------------------------------
def _cell(mean: float, std: float, scale: float = 100, digits: int = 2) -> str:
    if pd.isna(mean):
        return ""
    return f"{scale * mean:.{digits}f}" + ("" if pd.isna(std) else f" ± {scale * std:.{digits}f}")


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(map(str, line)) + " |" for line in lines)


def beyond_spread(best: tuple[float, float], other: tuple[float, float]) -> bool:
    """Whether `other` (mean, std) is below `best` by more than the two spreads over seeds together.

    Without a spread (one seed) nothing is beyond it.
    """
    (mb, sb), (mo, so) = best, other
    return not (pd.isna(sb) or pd.isna(so)) and mb - mo > sb + so


def accuracy_table(agg: pd.DataFrame, acc: str = ACC) -> str:
    """Markdown: series x target sparsity, accuracy in % as "mean ± std"; per target the best in bold (ties too), and
    `▼` where a series is below the best by more than their spreads over seeds together."""
    targets = sorted(agg["target_sparsity"].unique())
    header = ["method", "family", "n", *("dense" if t == 0 else f"{100 * t:g}%" for t in targets)]
    stats = agg.set_index(["series", "target_sparsity"])[[f"{acc}_mean", f"{acc}_std"]]
    best = {t: stats.xs(t, level=1)[f"{acc}_mean"].idxmax() for t in targets}
    rows = []
    for series, curve in agg.groupby("series", sort=False):
        cells = []
        for t in targets:
            if (series, t) not in stats.index:
                cells.append("")
                continue
            mine, top = tuple(stats.loc[(series, t)]), tuple(stats.loc[(best[t], t)])
            cell = _cell(*mine)
            cells.append(f"**{cell}**" if mine[0] == top[0] else cell + (" ▼" if beyond_spread(top, mine) else ""))
        rows.append([series, curve["family"].iloc[0], int(curve["n"].max()), *cells])
    return _markdown_table(header, rows)


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


def separation_text(table: pd.DataFrame, acc: str = ACC) -> str:
    """Markdown: the separation table and the gap between the best and the worst family."""
    family = table.groupby("family", sort=False)[acc].max()
    gap = 100 * (family.max() - family.min())
    rows = [[r["series"], r["family"], f"{100 * r[acc]:.2f}", f"{100 * r[BEFORE]:.2f}"] for _, r in table.iterrows()]
    head = (f"At {100 * table['sparsity'].iloc[0]:.2f}% of the parameters pruned, the highest sparsity every method "
            f"reaches (each curve read between its points), mean over seeds: best family {family.idxmax()}, worst "
            f"{family.idxmin()}, {gap:.1f} points apart after fine-tuning.")
    return head + "\n\n" + _markdown_table(["method", "family", f"{acc} (%)", "before fine-tuning (val, %)"], rows)


def scratch_table(agg: pd.DataFrame, acc: str = ACC) -> str | None:
    """Markdown: per scratch control and target, fine-tuning's accuracy minus the control's, and whether
    the difference is beyond the spread over seeds (larger than the sum of the two stds); None without controls."""
    if "retrain" not in agg or not (agg["retrain"] != "finetune").any():
        return None
    rows = []
    for (base, retrain), control in agg[agg["retrain"] != "finetune"].groupby(["base", "retrain"], sort=False):
        tuned = agg[(agg["base"] == base) & (agg["retrain"] == "finetune")].set_index("target_sparsity")
        for _, c in control[control["stage"] > 0].iterrows():
            t = c["target_sparsity"]
            if t not in tuned.index:
                continue
            f = tuned.loc[t]
            diff, spread = f[f"{acc}_mean"] - c[f"{acc}_mean"], f[f"{acc}_std"] + c[f"{acc}_std"]
            verdict = ("fine-tuning better" if diff > spread else f"{retrain} better" if -diff > spread
                       else "within the spread")
            rows.append([base, retrain, f"{100 * t:g}%", _cell(f[f"{acc}_mean"], f[f"{acc}_std"]),
                         _cell(c[f"{acc}_mean"], c[f"{acc}_std"]), f"{100 * diff:+.2f}", verdict])
    header = ["method", "control", "target", "fine-tuned", "control acc", "difference (pt)", "beyond the spread?"]
    return _markdown_table(header, rows) if rows else None


def summary_table(summary: pd.DataFrame) -> str:
    """Markdown: per series, the `run_summary` scores as "mean ± std" (accuracies and sparsities in %)."""
    columns = {"dense_acc": ("dense acc (%)", 100, 2), "final_acc": ("final acc (%)", 100, 2),
               "sparsity_within_1pt": ("max sparsity within 1 pt (%)", 100, 2),
               "acc_auc": ("AUC acc x sparsity", 1, 3), "total_time_s": ("wall time (s)", 1, 1)}
    header = ["method", "n", *(name for name, _, _ in columns.values())]
    rows = [[r["series"], r["n"], *(_cell(r[f"{c}_mean"], r[f"{c}_std"], scale, digits)
                                    for c, (_, scale, digits) in columns.items())] for _, r in summary.iterrows()]
    return _markdown_table(header, rows)


def deployment_table(agg: pd.DataFrame) -> str | None:
    """Markdown: per series, the stage with ONNX latencies (the final model): the MAC speedup theory promises
    beside measured CPU latency in PyTorch and in ONNX Runtime per batch size; None when no run has them."""
    batches = sorted({int(c[len("onnx_b"):-len("_ms_mean")]) for c in agg if c.startswith("onnx_b")
                      and c.endswith("_ms_mean")})
    timed = agg[agg[[f"onnx_b{b}_ms_mean" for b in batches]].notna().any(axis=1)] if batches else agg.iloc[:0]
    if timed.empty:
        return None
    header = ["method", "sparsity (%)", "theoretical speedup",
              *(f"{runtime} b{b} (ms)" for b in batches for runtime in ("PyTorch", "ONNX Runtime"))]
    rows = [[r["series"], _cell(r["sparsity_mean"], r["sparsity_std"]),
             _cell(r.get("theoretical_speedup_mean", np.nan), r.get("theoretical_speedup_std", np.nan), 1),
             *(_cell(r[f"{runtime}_b{b}_ms_mean"], r[f"{runtime}_b{b}_ms_std"], 1, 3)
               for b in batches for runtime in ("torch", "onnx"))] for _, r in timed.iterrows()]
    return _markdown_table(header, rows)


def markdown(agg: pd.DataFrame, summary: pd.DataFrame, skipped: list[tuple[str, str]], acc: str = ACC) -> str:
    """The comparison as a markdown document: the accuracy table, the summary table, what was left out."""
    parts = [f"{acc.replace('_', ' ').capitalize()} (%) per target sparsity, mean ± std over seeds (n runs); "
             "the best per target in bold, ▼ below the best by more than both spreads over seeds together. "
             "Structural targets are channel ratios: the tables below compare at equal parameter sparsity.",
             accuracy_table(agg, acc),
             separation_text(separation(agg, acc), acc),
             f"Per method: the highest sparsity within {100 * TOLERANCE:g} point of dense accuracy, and the area "
             "under accuracy vs sparsity (trapezoid from 0 to the last sparsity reached).",
             summary_table(summary)]
    controls = scratch_table(agg, acc)
    if controls:
        parts += ["Fine-tuning against training the pruned network from scratch (Liu et al. 2019), per target: "
                  "fine-tuned minus control accuracy, beyond the spread when larger than the sum of the stds.",
                  controls]
    deployed = deployment_table(agg)
    if deployed:
        parts += ["The final models on CPU (one thread, median ms per batch): PyTorch and ONNX Runtime, beside the "
                  "speedup the nonzero MACs promise over dense.", deployed]
    if skipped:
        parts.append("Left out: " + "; ".join(f"`{run}` ({why})" for run, why in skipped))
    return "\n\n".join(parts) + "\n"


@dataclass
class Comparison:
    """A sweep's comparison: the per-target table, the per-method summary and the figure."""

    table: pd.DataFrame
    summary: pd.DataFrame
    figure: Figure
    markdown: str


def protocol_by_series(protocols: pd.DataFrame) -> pd.DataFrame:
    """Per series, how its runs were made (`gather.protocol_row`); differing values of its runs joined by " | "."""
    if protocols.empty:
        return pd.DataFrame()
    fields = [c for c in protocols.columns if c not in ("run", "series")]
    return protocols.groupby("series", sort=False)[fields].agg(lambda v: " | ".join(dict.fromkeys(map(str, v))))


def protocol_table(protocol: pd.DataFrame) -> str:
    """Markdown: the protocol of every series (code, libraries, device, data fingerprint, budget)."""
    header = ["method", *protocol.columns]
    return _markdown_table(header, [[series, *row] for series, row in protocol.iterrows()])


def compare(sweep: Sweep) -> Comparison:
    """Aggregate a gathered sweep into its tables, figure and markdown; each series carries its protocol."""
    if sweep.runs.empty:
        raise ValueError("no complete runs to compare" + "".join(f"\n  {r}: {why}" for r, why in sweep.skipped))
    agg, summary = aggregate(sweep.runs), method_summary(sweep.runs)
    protocol = protocol_by_series(sweep.protocols)
    if not protocol.empty:  # in the tables' order
        protocol = protocol.reindex([s for s in agg["series"].unique() if s in protocol.index])
    text = markdown(agg, summary, sweep.skipped)
    if not protocol.empty:
        agg = agg.join(protocol, on="series")
        text += "\nHow each method's runs were made (protocol.json):\n\n" + protocol_table(protocol) + "\n"
    return Comparison(agg, summary, plot_comparison(agg), text)


def write(comparison: Comparison, out_dir: Path) -> dict[str, Path]:
    """Write comparison.png, comparison.csv and comparison.md into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {kind: out_dir / f"comparison.{kind}" for kind in ("png", "csv", "md")}
    comparison.figure.savefig(paths["png"], dpi=150)
    comparison.table.to_csv(paths["csv"], index=False)
    paths["md"].write_text(comparison.markdown)
    return paths
