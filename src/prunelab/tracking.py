"""Where results are watched: every Lightning logger (W&B first), fed stage by stage by `LoggerSink`."""

import logging
import netrc
import os
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
from pytorch_lightning.loggers import Logger, WandbLogger
from pytorch_lightning.utilities import rank_zero_only
from torch import nn
from typing_extensions import override

from prunelab.labels import run_labels, run_name
from prunelab.summary import run_summary
from prunelab.training.engine import StageRecord

log = logging.getLogger(__name__)

STEP_METRIC = "stage/sparsity"


def _stage_metrics(row: dict) -> dict[str, float]:
    return {f"stage/{k}": v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def define_stage_metrics(loggers: list[Logger]) -> None:
    """Make W&B chart stage metrics against the sparsity reached, not the step."""
    for logger in _wandb(loggers):
        logger.guard(lambda run: run.define_metric(STEP_METRIC))


def log_stage(loggers: list[Logger], row: dict, step: int) -> None:
    """Log one stage's row to every logger, as `stage/<column>`."""
    metrics = _stage_metrics(row)
    for logger in loggers:
        if isinstance(logger, SafeWandbLogger):
            logger.guard(_log_stage, metrics)
        else:
            logger.log_metrics(metrics, step=step)


def _log_stage(run, metrics: dict) -> None:
    for name in metrics:
        if name != STEP_METRIC:
            run.define_metric(name, step_metric=STEP_METRIC)
    run.log(metrics)


def log_curve(loggers: list[Logger], rows: list[dict]) -> None:
    """Log the accuracy-vs-sparsity curve to W&B as a table and a line plot."""
    if not rows:
        return
    for logger in _wandb(loggers):
        logger.guard(_log_curve, rows)


def _log_curve(run, rows: list[dict]) -> None:
    import wandb

    table = wandb.Table(dataframe=pd.DataFrame(rows))
    plot = wandb.plot.line(table, "sparsity", "test_acc", title="test accuracy vs sparsity")
    run.log({"curve/table": table, "curve/test_acc_vs_sparsity": plot})


def log_layer_table(loggers: list[Logger], stage: int, rows: list[dict]) -> None:
    """Log one stage's per-layer weights and sparsity to W&B as the table `layers/stage_<k>`."""
    if not rows:
        return
    for logger in _wandb(loggers):
        logger.guard(_log_layer_table, stage, rows)


def _log_layer_table(run, stage: int, rows: list[dict]) -> None:
    import wandb

    run.log({f"layers/stage_{stage}": wandb.Table(dataframe=pd.DataFrame(rows))})


def log_protocol(loggers: list[Logger], protocol: dict) -> None:
    """Add how the run was made (code, libraries, device, data, fine-tuning budget) to W&B's config as `protocol`."""
    for logger in _wandb(loggers):
        logger.guard(lambda run: run.config.update({"protocol": protocol}, allow_val_change=True))


def log_run_end(loggers: list[Logger], results: pd.DataFrame, layers: pd.DataFrame | None, model: nn.Module,
                model_path: Path, task) -> None:
    """At the end of a run, in W&B: the run's summary scalars (see `compare.run_summary`), the final
    stage's per-layer sparsity (`layers`: rows of layer_sparsity.csv) as table, plot and
    `layer_sparsity/<layer>` scalars and, with `logger.log_model`, the model."""
    summary = {f"summary/{k}": v for k, v in run_summary(results, task).items()}
    for logger in _wandb(loggers):
        logger.guard(lambda run: run.summary.update(summary))
        if layers is not None:
            logger.guard(_log_layers, layers)
        if logger.log_final_model:
            logger.guard(_log_model, model, model_path, summary)


def log_onnx(loggers: list[Logger], record: dict | None) -> None:
    """The final model's ONNX check (onnx.json) in W&B's summary: `onnx/matches`, `onnx/<runtime>_b<batch>_ms`,
    `onnx/error`."""
    if record is None:
        return
    summary = {"onnx/matches": record["matches"], **{f"onnx/{k}_ms": v for k, v in record["latency_ms"].items()}}
    if record["error"]:
        summary["onnx/error"] = record["error"]
    for logger in _wandb(loggers):
        logger.guard(lambda run: run.summary.update(summary))


def _log_layers(run, layers: pd.DataFrame) -> None:
    import wandb

    table = wandb.Table(dataframe=layers.drop(columns="stage", errors="ignore"))
    run.log({"layers/table": table, "layers/sparsity": wandb.plot.bar(table, "layer", "sparsity",
                                                                     title="final sparsity per layer")})
    run.summary.update({f"layer_sparsity/{n}": s for n, s in zip(layers["layer"], layers["sparsity"])})


def _log_model(run, model: nn.Module, path: Path, metadata: dict) -> None:
    """The final (pruned, fine-tuned) weights as a plain state_dict: usable as `dense_checkpoint`."""
    import torch
    import wandb

    torch.save(model.state_dict(), path)
    artifact = wandb.Artifact(f"model-{run.id}", type="model", metadata=metadata)
    artifact.add_file(str(path))
    run.log_artifact(artifact, aliases=["final"])


def finish(loggers: list[Logger], failed: bool) -> None:
    """Finalize every logger; a W&B run is finished, and marked failed (exit code 1) when `failed`."""
    for logger in loggers:
        logger.finalize("failed" if failed else "success")
    for logger in _wandb(loggers):
        logger.finish(exit_code=int(failed))


def _wandb(loggers: list[Logger]) -> list["SafeWandbLogger"]:
    return [lg for lg in loggers if isinstance(lg, SafeWandbLogger) and rank_zero_only.rank == 0]


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


def _sync_hint(run) -> str:
    run_dir = Path(run.dir).parent
    return f"its files are in {run_dir}; upload them with: wandb sync {run_dir}"


def start_run(mode: str = "auto", **init):
    """`wandb.init(**init)` in `mode`; if that fails (not logged in, no network), offline; if even
    that fails, disabled. Never raises; says where an offline run is and how to upload it."""
    import wandb

    wanted = wandb_mode(mode)
    for attempt in dict.fromkeys([wanted, "offline"]):
        try:
            run = wandb.init(mode=attempt, reinit="finish_previous", **init)
        except Exception as err:  # any W&B failure: fall back, never stop the run
            log.warning("W&B: could not start the run in %s mode (%s); falling back", attempt, str(err).splitlines()[0])
            continue
        if run.settings.mode == "offline":
            (log.info if attempt == wanted else log.warning)("W&B: offline run; %s", _sync_hint(run))
        elif run.settings.mode == "online":
            log.info("W&B: %s", run.url)
        return run
    log.warning("W&B: disabled for this run; results.csv and the logs are unaffected")
    return wandb.init(mode="disabled", reinit="finish_previous", **init)


def group_name(sweep_dir: str | Path) -> str:
    """The W&B group of a sweep: its directory as configured (W&B allows 128 characters)."""
    return str(sweep_dir)[-128:]


def sweep_group() -> str | None:
    """The running Hydra multirun's group, None outside a multirun."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return group_name(HydraConfig.get().sweep.dir)


def run_identity(labels: dict, group: str | None, tags=()) -> dict:
    """wandb.init's name, group, job_type (the method) and tags from a run's labels."""
    return {
        "name": run_name(labels),
        "group": group,
        "job_type": labels["method"],
        "tags": list(dict.fromkeys([labels["method"], labels["family"], labels["model"], labels["dataset"],
                                    labels["schedule"], f"seed={labels['seed']}", *tags])),
    }


class LoggerSink:
    """The engine's sink for Lightning loggers: each stage's row and layer table, then the curve."""

    def __init__(self, loggers: list[Logger]):
        self.loggers = loggers

    def start(self) -> None:
        define_stage_metrics(self.loggers)

    def stage_done(self, record: StageRecord) -> None:
        log_stage(self.loggers, record.row, record.step)
        log_layer_table(self.loggers, record.stage, record.layers)

    def run_done(self, rows: list[dict]) -> None:
        log_curve(self.loggers, rows)


class SafeWandbLogger(WandbLogger):
    """A WandbLogger whose W&B failures never stop the run: the first one is reported with how to
    upload what was logged, and W&B is left alone for the rest of the run."""

    def __init__(self, experiment, save_dir: str, log_final_model: bool = False):
        super().__init__(experiment=experiment, save_dir=save_dir)
        self.log_final_model, self.broken = log_final_model, False
        self.guard(lambda run: (run.define_metric("trainer/global_step"),
                                run.define_metric("*", step_metric="trainer/global_step", step_sync=True)))

    def guard(self, fn, *args):
        """`fn(run, *args)` unless W&B already failed in this run; a W&B error only logs a warning."""
        if self.broken:
            return
        try:
            fn(self.experiment, *args)
        except Exception as err:  # any W&B failure: keep training, keep results.csv
            self.broken = True
            log.warning("W&B failed mid-run (%s); the run goes on without W&B; %s", err, _sync_hint(self.experiment))

    @override
    def log_metrics(self, metrics, step=None) -> None:
        self.guard(lambda _: super(SafeWandbLogger, self).log_metrics(metrics, step))

    @override
    def log_hyperparams(self, params) -> None:
        self.guard(lambda _: super(SafeWandbLogger, self).log_hyperparams(params))

    def finish(self, exit_code: int) -> None:
        """Finish the W&B run with `exit_code` (1 marks it failed), even after a W&B failure."""
        try:
            self.experiment.finish(exit_code=exit_code)
        except Exception as err:  # the run's own outcome matters more than W&B's
            log.warning("W&B: could not finish the run (%s); %s", err, _sync_hint(self.experiment))


def wandb_logger(save_dir: str, run_config: dict, project: str = "prunelab", mode: str = "auto",
                 group: str | None = None, tags=(), log_model: bool = False, **init) -> SafeWandbLogger:
    """A W&B logger for one run: config = the resolved config, name/group/job_type/tags from its labels
    (group: `logger.group`, else the Hydra sweep), falling back to offline when W&B is unreachable."""
    labels = run_labels(run_config)
    if rank_zero_only.rank != 0:  # under DDP only rank 0 has a W&B run
        return SafeWandbLogger(None, str(save_dir), log_final_model=log_model)
    run = start_run(mode, project=project, dir=str(save_dir), config={**run_config, "method": labels["method"],
                    "family": labels["family"]}, **run_identity(labels, group or sweep_group(), tags), **init)
    return SafeWandbLogger(run, str(save_dir), log_final_model=log_model)


def no_logger(**_) -> bool:
    """`logger=none`: Lightning's `logger=False`."""
    return False


def csv_logger(save_dir: str, run_config: dict, **kwargs):
    """Lightning's CSVLogger in the run directory, with the resolved config as hparams."""
    from pytorch_lightning.loggers import CSVLogger

    logger = CSVLogger(save_dir=str(save_dir), name="csv", **kwargs)
    logger.log_hyperparams(run_config)
    return logger


def log_comparison(comparison, figure_path: Path, save_dir: str, group: str | None, mode: str = "auto",
                   tags=(), **init) -> None:
    """Log a sweep's comparison (`prunelab.analysis.compare.Comparison`) to one W&B run in the sweep's group
    (job_type "summary"): accuracy vs sparsity per method as a line series, the figure and both tables."""
    import wandb

    run = start_run(mode, dir=str(save_dir), name="summary", group=group, job_type="summary",
                    tags=["summary", *tags], config={"methods": list(comparison.summary["series"])}, **init)
    curves = list(comparison.table.groupby("series", sort=False))
    try:
        run.log({
            "comparison/test_acc_vs_sparsity": wandb.plot.line_series(
                xs=[c["sparsity_mean"].tolist() for _, c in curves], ys=[c["test_acc_mean"].tolist() for _, c in curves],
                keys=[s for s, _ in curves], title="test accuracy vs sparsity (mean over seeds)", xname="sparsity"),
            "comparison/figure": wandb.Image(str(figure_path)),
            "comparison/table": wandb.Table(dataframe=comparison.table),
            "comparison/summary": wandb.Table(dataframe=comparison.summary),
        })
    except Exception as err:  # the files on disk are the comparison; W&B is a copy
        log.warning("W&B: could not log the comparison (%s); it is in %s", err, Path(figure_path).parent)
    finally:
        run.finish()
