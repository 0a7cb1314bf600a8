"""A sweep's comparison in W&B: one summary run in the sweep's group."""

import logging
from pathlib import Path

from prunelab import results
from prunelab.tracking.session import start_run

log = logging.getLogger(__name__)


def log_comparison(comparison, figure_path: Path, save_dir: str, group: str | None, mode: str = "auto",
                   tags=(), **init) -> None:
    """Log a sweep's comparison (`prunelab.analysis.compare.Comparison`) to one W&B run in the sweep's group
    (job_type "summary"): accuracy vs sparsity per method as a line series, the figure and both tables."""
    import wandb

    run = start_run(mode, dir=str(save_dir), name="summary", group=group, job_type="summary",
                    tags=["summary", *tags], config={"methods": list(comparison.summary[results.SERIES])}, **init)
    curves = list(comparison.table.groupby(results.SERIES, sort=False))
    test = results.test(comparison.task.metric.name)
    try:
        run.log({
            results.comparison_plot(comparison.task.metric.name): wandb.plot.line_series(
                xs=[c[results.mean(results.AXIS)].tolist() for _, c in curves], ys=[c[results.mean(test)].tolist() for _, c in curves],
                keys=[s for s, _ in curves], title=f"{test.replace('_', ' ')} vs {results.AXIS} (mean over seeds)",
                xname=results.AXIS),
            results.COMPARISON_FIGURE: wandb.Image(str(figure_path)),
            results.COMPARISON_TABLE: wandb.Table(dataframe=comparison.table),
            results.COMPARISON_SUMMARY: wandb.Table(dataframe=comparison.summary),
        })
    except Exception as err:  # the files on disk are the comparison; W&B is a copy
        log.warning("W&B: could not log the comparison (%s); it is in %s", err, Path(figure_path).parent)
    finally:
        run.finish()
