"""The engine's sink for Lightning loggers, and what a run logs to W&B stage by stage and at its end."""

from pathlib import Path

import pandas as pd
from pytorch_lightning.loggers import Logger, WandbLogger
from pytorch_lightning.utilities import rank_zero_only
from torch import nn

from prunelab import atomic, results
from prunelab.summary import final_layers, run_summary
from prunelab.tasks import CLASSIFICATION, Task
from prunelab.tracking.safe import SafeWandbLogger
from prunelab.training.engine import StageRecord


def _stage_metrics(row: dict) -> dict[str, float]:
    return {results.stage_key(k): v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def define_stage_metrics(run, columns, task: Task) -> None:
    """Make W&B chart the stage metrics `columns` against the axis sparsity reached, not the step, and summarise
    the task's metric by its best value (max or min)."""
    run.define_metric(results.STEP_METRIC)
    best = "max" if task.metric.higher_is_better else "min"
    for column in columns:
        key = results.stage_key(column)
        if key == results.STEP_METRIC:
            continue
        metric = task.metric.name
        summary = best if column in (results.val(metric), results.test(metric), results.before_ft(metric),
                                   results.test_before_ft(metric)) else None
        run.define_metric(key, step_metric=results.STEP_METRIC, **({"summary": summary} if summary else {}))


def _log_stage(run, metrics: dict) -> None:
    run.log(metrics)


def log_curve(loggers: list[Logger], rows: list[dict], task: Task) -> None:
    """Log the curve of the task's test metric vs the axis sparsity to W&B as a table and a line plot."""
    if not rows:
        return
    for logger in _wandb(loggers):
        logger.guard(_log_curve, rows, task)


def _log_curve(run, rows: list[dict], task: Task) -> None:
    import wandb

    table = wandb.Table(dataframe=pd.DataFrame(rows))
    test = results.test(task.metric.name)
    plot = wandb.plot.line(table, results.AXIS, test, title=f"{test.replace('_', ' ')} vs {results.AXIS_LABEL}")
    run.log({results.CURVE_TABLE: table, results.curve_plot(task.metric.name): plot})


def log_layer_table(loggers: list[Logger], stage: int, rows: list[dict]) -> None:
    """Log one stage's per-layer weights and sparsity to W&B as the table `layers/stage_<k>`."""
    if not rows:
        return
    for logger in _wandb(loggers):
        logger.guard(_log_layer_table, stage, rows)


def _log_layer_table(run, stage: int, rows: list[dict]) -> None:
    import wandb

    run.log({results.layers_table(stage): wandb.Table(dataframe=pd.DataFrame(rows))})


def log_protocol(loggers: list[Logger], protocol: dict) -> None:
    """Add how the run was made (code, libraries, device, data, fine-tuning budget) to W&B's config as `protocol`."""
    for logger in _wandb(loggers):
        logger.guard(lambda run: run.config.update({"protocol": protocol}, allow_val_change=True))


def log_run_end(loggers: list[Logger], rows: pd.DataFrame, layers: pd.DataFrame | None, task: Task) -> None:
    """At the end of a run, in W&B: the run's summary scalars (see `summary.run_summary`) and the final stage's
    per-layer sparsity (`layers`: rows of layer_sparsity.csv) as table, plot and `layer_sparsity/<layer>` scalars."""
    summary = _summary(rows, task)
    for logger in _wandb(loggers):
        logger.guard(lambda run: run.summary.update(summary))
        if layers is not None:
            logger.guard(_log_layers, layers)


def log_final_model(loggers: list[Logger], model: nn.Module, model_path: Path, rows: pd.DataFrame,
                    task: Task) -> None:
    """With `logger.log_model`, the final model as a W&B artifact, its metadata the run's summary scalars."""
    metadata = _summary(rows, task)
    for logger in _wandb(loggers):
        if logger.log_final_model:
            logger.guard(_log_model, model, model_path, metadata)


def _summary(rows: pd.DataFrame, task: Task) -> dict:
    return {results.summary_key(k): v for k, v in run_summary(rows, task).items()}


def log_onnx(loggers: list[Logger], record: dict | None) -> None:
    """The final model's ONNX check (onnx.json) in W&B's summary: `onnx/matches`, `onnx/<runtime>_b<batch>_ms`,
    `onnx/error`."""
    if record is None:
        return
    prefix = results.ONNX_PREFIX
    summary = {prefix + "matches": record["matches"],
               **{f"{prefix}{k}_ms": v for k, v in record[results.LATENCY].items()}}
    if record["error"]:
        summary[prefix + "error"] = record["error"]
    for logger in _wandb(loggers):
        logger.guard(lambda run: run.summary.update(summary))


def _log_layers(run, layers: pd.DataFrame) -> None:
    import wandb

    table = wandb.Table(dataframe=layers.drop(columns=results.STAGE, errors="ignore"))
    plot = wandb.plot.bar(table, results.LAYER, results.LAYER_SPARSITY, title="final sparsity per layer")
    run.log({results.LAYERS_TABLE: table, results.LAYERS_PLOT: plot})
    run.summary.update({results.LAYER_SPARSITY_PREFIX + n: s
                        for n, s in zip(layers[results.LAYER], layers[results.LAYER_SPARSITY])})


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
    """The W&B loggers among `loggers` (a plain WandbLogger as a SafeWandbLogger over its run), on rank 0 only."""
    if rank_zero_only.rank != 0:
        return []
    return [SafeWandbLogger.over(lg) for lg in loggers if isinstance(lg, WandbLogger)]


class LoggerSink:
    """The engine's sink for Lightning loggers, the command's W&B layout for any WandbLogger: each stage's row
    (W&B learns the stage metrics once, at the first row it gets) and layer table, then the curve, the
    summary scalars and the final per-layer sparsity. A W&B run continued after a kill gets each stage once."""

    def __init__(self, loggers: list[Logger], task: Task = CLASSIFICATION):
        self.loggers, self.task = loggers, task
        self._runs: list[SafeWandbLogger] | None = None
        self._layer_rows: list[dict] = []

    def start(self) -> None:
        self._runs = None

    def stage_done(self, record: StageRecord) -> None:
        metrics = _stage_metrics(record.row)
        for logger in self.loggers:
            if not isinstance(logger, WandbLogger):
                logger.log_metrics(metrics, step=record.step)
        first, runs = self._runs is None, self._wandb()
        columns = [c for c in record.row if results.stage_key(c) in metrics]
        for logger in runs:
            if first:
                logger.guard(define_stage_metrics, columns, self.task)
            if not logger.holds(record.stage):
                logger.guard(_log_stage, metrics)
                log_layer_table([logger], record.stage, record.layers)
                logger.logged(record.stage)
        self._layer_rows = record.layer_rows

    def run_done(self, rows: list[dict]) -> None:
        runs = self._wandb()
        log_curve(runs, rows, self.task)
        layers = final_layers(pd.DataFrame(self._layer_rows)) if self._layer_rows else None
        log_run_end(runs, pd.DataFrame(rows), layers, self.task)

    def _wandb(self) -> list[SafeWandbLogger]:
        """The W&B loggers, each wrapped once per training (after the Trainer started their runs)."""
        if self._runs is None:
            self._runs = _wandb(self.loggers)
        return self._runs
