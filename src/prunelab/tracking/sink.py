"""The engine's sink for Lightning loggers, and what a run logs to W&B stage by stage and at its end."""

from pathlib import Path

import pandas as pd
from pytorch_lightning.loggers import Logger
from pytorch_lightning.utilities import rank_zero_only
from torch import nn

from prunelab import atomic
from prunelab.scores import run_summary
from prunelab.tracking.safe import SafeWandbLogger
from prunelab.training.engine import StageRecord

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
                model_path: Path) -> None:
    """At the end of a run, in W&B: the run's summary scalars (see `scores.run_summary`), the final
    stage's per-layer sparsity (`layers`: rows of layer_sparsity.csv) as table, plot and
    `layer_sparsity/<layer>` scalars and, with `logger.log_model`, the model."""
    summary = {f"summary/{k}": v for k, v in run_summary(results).items()}
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
    import wandb

    atomic.save_torch(path, model.state_dict())
    artifact = wandb.Artifact(f"model-{run.id}", type="model", metadata=metadata)
    artifact.add_file(str(path))
    run.log_artifact(artifact, aliases=["final"])


def finish(loggers: list[Logger], failed: bool) -> None:
    """Finalize every logger; a W&B run is finished, and marked failed (exit code 1) when `failed`."""
    for logger in loggers:
        logger.finalize("failed" if failed else "success")
    for logger in _wandb(loggers):
        logger.finish(exit_code=int(failed))


def _wandb(loggers: list[Logger]) -> list[SafeWandbLogger]:
    return [lg for lg in loggers if isinstance(lg, SafeWandbLogger) and rank_zero_only.rank == 0]


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

