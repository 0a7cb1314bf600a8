"""The comparison of a set of runs: `prunelab-report`, from run directories or W&B (`compare_sweep.CompareSweep`
builds the same in the sweep directory at the end of a multirun).

    prunelab-report multirun/2025-01-01/10-00-00                    # one sweep
    prunelab-report multirun/a multirun/b "outputs/*/*magnitude*"    # several, combined
    prunelab-report --wandb me/prunelab --group multirun/2025-01-01/10-00-00 --out report/

writes comparison.png, comparison.csv and comparison.md into --out (default: the current directory).
"""

import argparse
import logging
import sys
from pathlib import Path
from typing import Iterable

import pandas as pd

from prunelab import results, tasks
from prunelab.analysis import compare, gather
from prunelab.labels import run_labels


def wandb_run(run) -> gather.Run | str:
    """A run of the W&B API (`wandb.apis.public.Run`) as a `gather.Run`, or why it is left out.

    Its rows are the history rows with stage metrics (`stage/<column>`), its labels come from its
    config, its per-layer sparsity from the `layer_sparsity/<layer>` summary scalars.
    """
    if run.state != "finished":
        return f"W&B state {run.state}"
    stages = [results.stage_columns(row) for row in run.scan_history()
              if row.get(results.stage_key(results.STAGE)) is not None]
    if not stages:
        return "no stage metrics in its history"
    config = dict(run.config)
    rows = pd.DataFrame([{**run_labels(config), **s} for s in stages]).sort_values(results.STAGE)
    rows[results.STAGE] = rows[results.STAGE].astype(int)
    if missing_stages := gather.missing_stages(rows, config):
        return missing_stages
    layers = results.layer_sparsities(run.summary)
    layer_table = (pd.DataFrame({results.LAYER: list(layers), results.LAYER_SPARSITY: list(layers.values())})
                   if layers else None)
    return gather.Run("/".join(run.path), rows.reset_index(drop=True), gather.config_settings(config),
                      layer_table, task=tasks.from_config(config))


def wandb_runs(runs: Iterable) -> tuple[list[gather.Run], list[tuple[str, str]]]:
    """The pruning runs among W&B API runs (summary runs aside), and those left out with why."""
    kept, skipped = [], []
    for run in runs:
        if run.job_type == "summary":
            continue
        converted = wandb_run(run)
        if isinstance(converted, gather.Run):
            kept.append(converted)
        else:
            skipped.append(("/".join(run.path), converted))
    return kept, skipped


def load(paths: Iterable[str] = (), project: str | None = None, group: str | None = None) -> gather.Sweep:
    """Runs from directories/globs and from a W&B project ("entity/project", optionally one group)."""
    runs, skipped = gather.collect(paths)
    if project:
        import wandb  # here, not at the top: only --wandb needs it

        api_runs = wandb.Api().runs(project, filters={"group": group} if group else None)
        more, more_skipped = wandb_runs(api_runs)
        runs, skipped = runs + more, skipped + more_skipped
    return gather.build_sweep(runs, skipped)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="prunelab-report", description="Compare the methods of a set of runs: comparison.png/.csv/.md.")
    parser.add_argument("paths", nargs="*", help="sweep or run directories, or globs (quote them)")
    parser.add_argument("--wandb", metavar="ENTITY/PROJECT", help="also read the runs of this W&B project")
    parser.add_argument("--group", help="only this W&B group (a sweep: its directory, e.g. multirun/<date>/<time>)")
    parser.add_argument("--out", type=Path, default=Path("."), help="where to write the comparison (default: .)")
    args = parser.parse_args(argv)
    if not args.paths and not args.wandb:
        parser.error("give run directories, globs, or --wandb ENTITY/PROJECT")
    return args


def main(argv: list[str] | None = None) -> None:
    """The `prunelab-report` command."""
    import wandb

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse(argv)
    try:
        sweep = load(args.paths, args.wandb, args.group)
    except wandb.errors.Error as err:  # not logged in, no such project, no network
        print(f"prunelab-report: error: W&B: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    if sweep.runs.empty:
        print("prunelab-report: error: no complete runs found", file=sys.stderr)
        raise SystemExit(2)
    comparison = compare.compare(sweep)
    paths = compare.write(comparison, args.out)
    print(comparison.markdown)
    groups = f" in {len(comparison.groups)} groups" if len(comparison.groups) > 1 else ""
    print(f"{sweep.runs['run'].nunique()} runs compared{groups}, {len(sweep.skipped)} left out; wrote "
          + ", ".join(map(str, paths.files())))


if __name__ == "__main__":
    main()
