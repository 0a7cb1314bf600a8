"""The comparison as markdown: the accuracy, separation, summary, scratch-control, deployment and protocol
tables, and the document that joins them."""

import numpy as np
import pandas as pd

from prunelab.analysis.aggregate import BEFORE, beyond_spread, separation
from prunelab.scores import ACC, TOLERANCE


def _cell(mean: float, std: float, scale: float = 100, digits: int = 2) -> str:
    if pd.isna(mean):
        return ""
    return f"{scale * mean:.{digits}f}" + ("" if pd.isna(std) else f" ± {scale * std:.{digits}f}")


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(map(str, line)) + " |" for line in lines)


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


def protocol_table(protocol: pd.DataFrame) -> str:
    """Markdown: the protocol of every series (code, libraries, device, data fingerprint, budget)."""
    header = ["method", *protocol.columns]
    return _markdown_table(header, [[series, *row] for series, row in protocol.iterrows()])
