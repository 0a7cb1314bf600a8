"""Comparing methods: a gathered sweep in, its tables, figure and markdown out, and the files they go to.

Runs are compared group by group (`gather.Sweep.groups`: one task, model and dataset each), never across
groups. Every table and figure shows a series' mean and standard deviation over its seeds: `aggregate`
computes them, `figures` draws them, `tables` writes them as markdown.
"""

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from prunelab import atomic
from prunelab.analysis.aggregate import SERIES, aggregate, method_summary, protocol_by_series
from prunelab.analysis.figures import Curves, plot_comparison
from prunelab.analysis.gather import Group, Sweep, group_title
from prunelab.analysis.tables import document, protocol_table, section
from prunelab.paths import ComparisonPaths
from prunelab.tasks import Task


@dataclass
class GroupComparison:
    """One group's comparison: its task, per-target table (protocol columns joined) and per-method summary."""

    task: Task
    table: pd.DataFrame
    summary: pd.DataFrame


@dataclass
class Comparison:
    """A sweep's comparison: per group its tables, one figure with a row of panels per group, and the markdown
    with a section per group."""

    groups: dict[Group, GroupComparison]
    figure: Figure
    markdown: str

    @property
    def table(self) -> pd.DataFrame:
        """Every group's per-target table, one after the other (comparison.csv; the group is in its label columns)."""
        return pd.concat([g.table for g in self.groups.values()], ignore_index=True)

    @property
    def summary(self) -> pd.DataFrame:
        return pd.concat([g.summary for g in self.groups.values()], ignore_index=True)


def compare_group(sweep: Sweep, key: Group) -> tuple[GroupComparison, str]:
    """One group's tables and its markdown section; each series carries its protocol."""
    part = sweep.group(key)
    task = part.tasks[key]
    agg, summary = aggregate(part.runs), method_summary(part.runs, task)
    text = section(group_title(key), agg, summary, task)
    protocol = protocol_by_series(part.protocols)
    if not protocol.empty:  # in the tables' order
        protocol = protocol.reindex([s for s in agg[SERIES].unique() if s in protocol.index])
        agg = agg.join(protocol, on=SERIES)
        text += "\n\nHow each method's runs were made (protocol.json):\n\n" + protocol_table(protocol)
    return GroupComparison(task, agg, summary), text


def compare(sweep: Sweep) -> Comparison:
    """Aggregate a gathered sweep, group by group, into its tables, figure and markdown."""
    if sweep.runs.empty:
        raise ValueError("no complete runs to compare" + "".join(f"\n  {r}: {why}" for r, why in sweep.skipped))
    groups, sections = {}, []
    for key in sweep.groups():
        groups[key], text = compare_group(sweep, key)
        sections.append(text)
    curves = [Curves(group_title(key), g.table, g.task, sweep.samples.get(key, {})) for key, g in groups.items()]
    return Comparison(groups, plot_comparison(curves), document(sections, sweep.skipped))


def write(comparison: Comparison, out_dir: Path) -> ComparisonPaths:
    """Write the comparison's figure, table and markdown (`ComparisonPaths`) into `out_dir`, each atomically."""
    paths = ComparisonPaths(Path(out_dir))
    atomic.save_figure(paths.figure, comparison.figure, dpi=150)
    atomic.write_table(paths.table, comparison.table)
    atomic.write_text(paths.document, comparison.markdown)
    return paths
