"""A sweep's comparison in W&B: one summary run in the sweep's group."""

import logging
from pathlib import Path

from prunelab import results
from prunelab.tracking.session import start_run

log = logging.getLogger(__name__)


def line_series(table, task, key: tuple[str, ...] = ()) -> dict:
    """The test metric vs the axis sparsity of one group of runs (`key`: its task, model and dataset, named in
    the W&B key when the comparison has several groups), one line per series (mean over seeds)."""
    import wandb

    curves = list(table.groupby(results.SERIES, sort=False))
    test = results.test(task.metric.name)
    title = f"{test.replace('_', ' ')} vs {results.AXIS} (mean over seeds)"
    title += f": {' / '.join(key)}" if key else ""
    xs = [c[results.mean(results.AXIS)].tolist() for _, c in curves]
    ys = [c[results.mean(test)].tolist() for _, c in curves]
    return {results.comparison_plot(task.metric.name, key): wandb.plot.line_series(
        xs=xs, ys=ys, keys=[s for s, _ in curves], title=title, xname=results.AXIS)}


def log_comparison(comparison, figure_path: Path, save_dir: str, group: str | None, mode: str = "auto",
                   tags=(), **init) -> None:
    """Log a sweep's comparison (`prunelab.analysis.compare.Comparison`) to one W&B run in the sweep's group
    (job_type "summary"): per group of runs (task, model, dataset) its metric vs sparsity per method as a line
    series, the figure and both tables."""
    import wandb

    run = start_run(mode, dir=str(save_dir), name="summary", group=group, job_type="summary",
                    tags=["summary", *tags], config={"methods": list(comparison.summary[results.SERIES])}, **init)
    several = len(comparison.groups) > 1
    try:
        plots = {}
        for key, part in comparison.groups.items():
            plots.update(line_series(part.table, part.task, key if several else ()))
        run.log({
            **plots,
            results.COMPARISON_FIGURE: wandb.Image(str(figure_path)),
            results.COMPARISON_TABLE: wandb.Table(dataframe=comparison.table),
            results.COMPARISON_SUMMARY: wandb.Table(dataframe=comparison.summary),
        })
    except Exception as err:  # the files on disk are the comparison; W&B is a copy
        log.warning("W&B: could not log the comparison (%s); it is in %s", err, Path(figure_path).parent)
    finally:
        run.finish()
