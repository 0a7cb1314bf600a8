"""Where results go: results.csv in the run directory, and every Lightning logger (W&B first)."""

import logging
import netrc
import os
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
from pytorch_lightning.loggers import Logger, WandbLogger

log = logging.getLogger(__name__)

STEP_METRIC = "stage/sparsity"


def write_results(rows: list[dict], path: Path) -> None:
    """Write the stage rows to `path` atomically (a crash never leaves half a file)."""
    tmp = path.with_suffix(".tmp")
    pd.DataFrame(rows).to_csv(tmp, index=False)
    os.replace(tmp, path)


def _stage_metrics(row: dict) -> dict[str, float]:
    return {f"stage/{k}": v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def define_stage_metrics(loggers: list[Logger]) -> None:
    """Make W&B chart stage metrics against the sparsity reached, not the step."""
    for run in _wandb_runs(loggers):
        run.define_metric(STEP_METRIC)


def log_stage(loggers: list[Logger], row: dict, step: int) -> None:
    """Log one stage's row to every logger, as `stage/<column>`."""
    metrics = _stage_metrics(row)
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            for name in metrics:
                if name != STEP_METRIC:
                    logger.experiment.define_metric(name, step_metric=STEP_METRIC)
            logger.experiment.log(metrics)
        else:
            logger.log_metrics(metrics, step=step)


def log_curve(loggers: list[Logger], rows: list[dict]) -> None:
    """Log the accuracy-vs-sparsity curve to W&B as a table and a line plot."""
    runs = _wandb_runs(loggers)
    if not runs or not rows:
        return
    import wandb

    table = wandb.Table(dataframe=pd.DataFrame(rows))
    plot = wandb.plot.line(table, "sparsity", "test_acc", title="test accuracy vs sparsity")
    for run in runs:
        run.log({"curve/table": table, "curve/test_acc_vs_sparsity": plot})


def log_layer_table(loggers: list[Logger], stage: int, rows: list[dict]) -> None:
    """Log one stage's per-layer weights and sparsity to W&B as the table `layers/stage_<k>`."""
    runs = _wandb_runs(loggers)
    if not runs or not rows:
        return
    import wandb

    table = wandb.Table(dataframe=pd.DataFrame(rows))
    for run in runs:
        run.log({f"layers/stage_{stage}": table})


def _wandb_runs(loggers: list[Logger]) -> list:
    return [lg.experiment for lg in loggers if isinstance(lg, WandbLogger)]


def _logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wandb_mode(mode: str) -> str:
    """`auto` means WANDB_MODE if set, else online when logged in, else offline."""
    if mode != "auto":
        return mode
    return os.environ.get("WANDB_MODE") or ("online" if _logged_in() else "offline")


def wandb_logger(save_dir: str, run_config: dict, project: str = "prunelab", mode: str = "auto", **kwargs) -> WandbLogger:
    """A WandbLogger whose run carries the resolved config; says where the run is and how to sync it."""
    logger = WandbLogger(project=project, save_dir=str(save_dir), mode=wandb_mode(mode), config=run_config, **kwargs)
    run = logger.experiment
    if run.settings.mode == "offline" or getattr(run, "offline", False):
        log.info("W&B: offline run in %s; upload it with: wandb sync %s", run.dir, Path(run.dir).parent)
    else:
        log.info("W&B: %s", run.url)
    return logger


def no_logger(**_) -> bool:
    """`logger=none`: Lightning's `logger=False`."""
    return False


def csv_logger(save_dir: str, run_config: dict, **kwargs):
    """Lightning's CSVLogger in the run directory, with the resolved config as hparams."""
    from pytorch_lightning.loggers import CSVLogger

    logger = CSVLogger(save_dir=str(save_dir), name="csv", **kwargs)
    logger.log_hyperparams(run_config)
    return logger
