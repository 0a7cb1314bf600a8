"""Comparing methods: a gathered sweep in, its tables, figure and markdown out, and the files they go to.

Every table and figure shows a series' mean and standard deviation over its seeds: `aggregate` computes
them, `figures` draws them, `tables` writes them as markdown.
"""

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from prunelab import atomic
from prunelab.analysis.aggregate import aggregate, method_summary, protocol_by_series
from prunelab.analysis.figures import plot_comparison
from prunelab.analysis.gather import Sweep
from prunelab.analysis.tables import markdown, protocol_table
from prunelab.paths import ComparisonPaths
from prunelab.tasks import Task


@dataclass
class Comparison:
    """A sweep's comparison: the per-target table, the per-method summary and the figure."""

    table: pd.DataFrame
    summary: pd.DataFrame
    figure: Figure
    markdown: str
    task: Task


def compare(sweep: Sweep) -> Comparison:
    """Aggregate a gathered sweep into its tables, figure and markdown; each series carries its protocol."""
    if sweep.runs.empty:
        raise ValueError("no complete runs to compare" + "".join(f"\n  {r}: {why}" for r, why in sweep.skipped))
    task = sweep.task
    agg, summary = aggregate(sweep.runs), method_summary(sweep.runs, task)
    protocol = protocol_by_series(sweep.protocols)
    if not protocol.empty:  # in the tables' order
        protocol = protocol.reindex([s for s in agg["series"].unique() if s in protocol.index])
    text = markdown(agg, summary, sweep.skipped, task)
    if not protocol.empty:
        agg = agg.join(protocol, on="series")
        text += "\nHow each method's runs were made (protocol.json):\n\n" + protocol_table(protocol) + "\n"
    return Comparison(agg, summary, plot_comparison(agg, task), text, task)


def write(comparison: Comparison, out_dir: Path) -> ComparisonPaths:
    """Write the comparison's figure, table and markdown (`ComparisonPaths`) into `out_dir`, each atomically."""
    paths = ComparisonPaths(Path(out_dir))
    atomic.save_figure(paths.figure, comparison.figure, dpi=150)
    atomic.write_table(paths.table, comparison.table)
    atomic.write_text(paths.document, comparison.markdown)
    return paths
