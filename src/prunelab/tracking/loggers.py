"""The `logger` config group's factories (`conf/logger/*.yaml`): each builds a run's Lightning logger."""

from pathlib import Path

from pytorch_lightning.utilities import rank_zero_only

from prunelab.labels import run_labels
from prunelab.paths import RunPaths
from prunelab.tracking.safe import SafeWandbLogger
from prunelab.tracking.session import FolderRun, run_identity, start_run, sweep_group


def wandb_logger(save_dir: str, run_config: dict, project: str = "prunelab", mode: str = "auto",
                 group: str | None = None, tags=(), log_model: bool = False, **init) -> SafeWandbLogger:
    """A W&B logger for one run: config = the resolved config, name/group/job_type/tags from its labels
    (group: `logger.group`, else the Hydra sweep), falling back to offline when W&B is unreachable.
    `save_dir` is the run folder: a run continued there continues its W&B run (see `FolderRun`)."""
    labels = run_labels(run_config)
    if rank_zero_only.rank != 0:  # under DDP only rank 0 has a W&B run
        return SafeWandbLogger(None, str(save_dir), log_final_model=log_model)
    kept = FolderRun.of(RunPaths(Path(save_dir)).wandb_run)
    run = start_run(mode, project=project, dir=str(save_dir), config={**run_config, "method": labels["method"],
                    "family": labels["family"]}, id=kept.id, resume="allow",
                    **run_identity(labels, group or sweep_group(), tags), **init)
    logger = SafeWandbLogger(run, str(save_dir), log_final_model=log_model, kept=kept)
    logger.guard(_train_axis)
    return logger


def _train_axis(run) -> None:
    """Training metrics against the trainer's step, as Lightning's WandbLogger does for the runs it starts."""
    run.define_metric("trainer/global_step")
    run.define_metric("*", step_metric="trainer/global_step", step_sync=True)


def no_logger(**_) -> bool:
    """`logger=none`: Lightning's `logger=False`."""
    return False


def csv_logger(save_dir: str, run_config: dict, **kwargs):
    """Lightning's CSVLogger in the run directory, with the resolved config as hparams."""
    from pytorch_lightning.loggers import CSVLogger

    logger = CSVLogger(save_dir=str(save_dir), name="csv", **kwargs)
    logger.log_hyperparams(run_config)
    return logger
