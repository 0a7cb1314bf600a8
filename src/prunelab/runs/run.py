"""One pruning run: a RunSpec in, results (one row per stage) out, resumable in its folder."""

import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from torch import nn

from prunelab import tasks
from prunelab.tracking import sink
from prunelab.config import build
from prunelab.errors import ConfigError
from prunelab.models.causal_lm import CausalLM, save_pretrained
from prunelab.paths import RunPaths
from prunelab.pruning.masks import Masks
from prunelab.runs import cache, protocol, resume, threads
from prunelab.runs.folder import RunFolder, write_onnx, write_protocol
from prunelab.runs.hardware import check_trainer
from prunelab.runs.spec import RunSpec
from prunelab.tasks import Task
from prunelab.training import deploy
from prunelab.training.callback import PruningCallback
from prunelab.training.engine import Sink, StageEngine
from prunelab.training.export import save_model, traceable
from prunelab.training.meter import Meter

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a finished run leaves: one row per stage, the trained module and its final masks."""

    results: pd.DataFrame
    module: pl.LightningModule
    masks: Masks | None


@dataclass
class Parts:
    """Everything a run trains with, built and checked before training."""

    datamodule: pl.LightningDataModule
    module: pl.LightningModule
    engine: StageEngine
    task: Task


def load_dense(model: nn.Module, path: str) -> None:
    """Load a dense model from a Lightning checkpoint, a run's model_final_state.pt or a plain state_dict file."""
    if not Path(path).is_file():
        raise ConfigError("dense_checkpoint", f"no file at {path}", "give the path of a .ckpt or .pt file, or null")
    fit = "give a checkpoint of the same model and dataset"
    state = resume.load(path, "dense_checkpoint", fit)
    if "state_dict" in state and "config" in state:  # model_final_state.pt (`training.export.save_model`)
        state = state["state_dict"]
    elif "state_dict" in state:  # a Lightning checkpoint: the LightningModule's `model`
        state = {k.removeprefix("model."): v for k, v in state["state_dict"].items() if k.startswith("model.")}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise ConfigError("dense_checkpoint", f"does not fit model={model.__class__.__name__} ({first})", fit) from None


def prepare(spec: RunSpec, sinks: list[Sink] | None = None) -> Parts:
    """Build everything a run needs from its spec; every ConfigError that `runs.spec.check` leaves is raised here,
    before training."""
    config = spec.config
    check_trainer(config["trainer"])
    schedule = build(config["schedule"])
    datamodule = build(config["dataset"])
    datamodule.check()
    pl.seed_everything(spec.seed, workers=True, verbose=False)
    model = build(config["model"])
    pruner = build(config["pruning"])
    pruner.parameters(model)
    pruner.check(model, list(schedule.targets))
    if config["dense_checkpoint"]:
        protocol.check_dense_record(config["dense_checkpoint"], spec.dense_settings.get("model", {}), datamodule)
        load_dense(model, config["dense_checkpoint"])
    task = tasks.from_config(config, module=instantiate(config["task"]["module"]))
    module = task.module(model, instantiate(config["optimizer"]), instantiate(config["scheduler"]),
                         datamodule=datamodule, channels_last=config["channels_last"])
    recovery = build(config["recovery"])
    recovery.check(model, schedule.gradual)
    engine = StageEngine(pruner, schedule, spec.labels, meter=Meter(**config["metrics"]), recovery=recovery,
                         model_factory=partial(build, config["model"]), sinks=sinks or [], task=task)
    return Parts(datamodule, module, engine, task)


def preflight(spec: RunSpec, fetch: bool = True) -> Parts:
    """Every check of a run that can be made before its folder, its logger or its W&B run exist: its torch
    threads set, its parts built and checked (`prepare`; they write to the run folder only once they train)
    and, with `fetch` (the first process of a run), its data fetched (`prepare_data`: a failed download is a
    ConfigError). Returns the parts."""
    threads.apply(spec.config["threads"])
    parts = prepare(spec, sinks=[RunFolder(spec.paths)])
    if fetch:
        parts.datamodule.prepare_data()
    return parts


def start(spec: RunSpec, parts: Parts) -> object:
    """The run's logger, built while its data is loaded (`datamodule.setup`): W&B's init (its service process,
    its imports) takes seconds that would otherwise come before the first step. A failed load finishes the
    logger's run as failed."""
    with ThreadPoolExecutor(1) as pool:
        started = pool.submit(build, spec.config["logger"], save_dir=str(spec.paths.root), run_config=spec.config)
        try:
            parts.datamodule.setup("fit")
        except BaseException:
            sink.finish([logger] if (logger := started.result()) else [], failed=True)
            raise
        return started.result()


def _trainer(spec: RunSpec, paths: RunPaths, stamp: resume.Stamp, callback: PruningCallback, **kwargs):
    """The configured Trainer, checkpointing every epoch into `paths` for resume; its progress bar only on a
    terminal (a log file or a pipe gets the stage lines)."""
    ckpt = resume.checkpointing(paths, stamp)
    bar = spec.config["trainer"].get("enable_progress_bar", True) and sys.stdout.isatty()
    return build(spec.config["trainer"], callbacks=[callback, *ckpt.pop("callbacks")], enable_progress_bar=bar,
                 default_root_dir=str(paths.root), **ckpt, **kwargs)


def _fit(trainer, parts: Parts, start: Path | None) -> None:
    if start is not None:
        checkpoint = torch.load(start, map_location="cpu", weights_only=True, mmap=True)
        log.info("continuing from %s after epoch %d", start, checkpoint["epoch"] + 1)
        state = PruningCallback.saved_state(checkpoint)
        if state is not None:  # Lightning loads the weights into the model as it is: rebuild the saved architecture
            parts.engine.rebuild(parts.module.model, state, parts.datamodule.input_shape)
    try:
        trainer.fit(parts.module, datamodule=parts.datamodule, ckpt_path=start, weights_only=True)
    except SystemExit:
        if trainer.interrupted:  # Lightning answers Ctrl-C with its shutdown and sys.exit(1): it is Ctrl-C still
            raise KeyboardInterrupt from None
        raise


def train_dense(spec: RunSpec, work: Path) -> Path:
    """Dense training only (stage 0), resumable in `work`; returns its final checkpoint. It makes no stage 0 row
    (nor its log line): every run that continues from the checkpoint makes its own."""
    parts, paths = prepare(spec), RunPaths(work)
    stamp = resume.Stamp("dense", spec.dense_settings)
    trainer = _trainer(spec, paths, stamp, PruningCallback(parts.engine, finish=False),
                       max_epochs=parts.engine.schedule.pretrain_epochs, logger=False)
    last = paths.last_checkpoint
    _fit(trainer, parts, resume.check(last, stamp, paths.root) if last.is_file() else None)
    return last


def start_checkpoint(spec: RunSpec, stamp: resume.Stamp, processes: int) -> Path | None:
    """Where the run continues from: its own last checkpoint, else the shared dense model, else nothing."""
    last = spec.paths.last_checkpoint
    if last.is_file():
        return resume.check(last, stamp, spec.paths.root)
    if spec.shares_dense and processes > 1:  # the other processes of a DDP run would wait on the lock forever
        log.info("dense model: not shared, this run trains it in %d processes", processes)
    elif spec.shares_dense:
        dense = cache.dense_checkpoint(spec, lambda work: train_dense(spec, work))
        return resume.check(dense, resume.Stamp("dense", spec.dense_settings), dense.parent)
    return None


def export_onnx(paths: RunPaths, model: nn.Module, input_shape, stage: int) -> dict | None:
    """The final model to ONNX, checked against PyTorch and timed (`training.deploy.check_onnx`), into
    onnx.json; None (one log line) without the `export` extra. A failed export is logged and recorded, never raised."""
    if not deploy.available():
        log.info("onnx: skipped, the export extra is not installed (pip install 'prunelab[export]')")
        return None
    outcome = deploy.check_onnx(model, input_shape, paths.onnx_model)
    (log.warning if outcome.error else log.info)("%s", outcome.summary())
    record = outcome.record(stage)
    write_onnx(paths, record)
    return record


def run(spec: RunSpec, parts: Parts | None = None) -> RunResult:
    """Dense training, then prune -> evaluate -> fine-tune -> evaluate per target; returns the rows.

    `parts`: what `preflight(spec)` returned (None: it is called here). A run continues from the last
    checkpoint in its folder when there is one. How it was made (`runs.protocol`) goes to protocol.json and
    the W&B config. Ctrl-C comes out as KeyboardInterrupt, whatever was running.
    """
    paths, config = spec.paths, spec.config
    parts = parts or preflight(spec)
    paths.root.mkdir(parents=True, exist_ok=True)
    logger = start(spec, parts)
    loggers = [logger] if logger else []
    parts.engine.sinks.append(sink.LoggerSink(loggers, parts.task))
    stamp = resume.Stamp("run", spec.settings)
    try:  # the W&B run is finished whatever happens, and marked failed when the run fails
        trainer = _trainer(spec, paths, stamp, PruningCallback(parts.engine),
                           max_epochs=parts.engine.schedule.total_epochs, logger=logger)
        if trainer.is_global_zero:
            made = protocol.record(config, parts.datamodule, parts.engine.schedule, trainer.strategy.root_device)
            write_protocol(paths, made)
            sink.log_protocol(loggers, made)
        _fit(trainer, parts, start_checkpoint(spec, stamp, trainer.world_size))
        if trainer.is_global_zero:  # the splits exist once training has set the data up
            write_protocol(paths, {**made, protocol.SAMPLES: protocol.split_samples(parts.datamodule)})
        engine, model = parts.engine, parts.module.model
        traced = traceable(model)
        if not traced and (config["save_model"] is True or config["export_onnx"]):
            log.info("model_final.pt2 and ONNX: skipped, prunelab does not trace language models yet")
        if config["save_model"] is True and isinstance(model, CausalLM) and trainer.is_global_zero:
            save_pretrained(model, paths.pretrained_model)  # the pruned sizes in its config
        if config["save_model"] and trainer.is_global_zero:
            save_model(paths, model, engine.masks, config, parts.datamodule.input_shape,
                       engine.state.removal.get("history", []), program=config["save_model"] is True and traced)
        if config["export_onnx"] and traced and trainer.is_global_zero:
            record = export_onnx(paths, model, parts.datamodule.input_shape, engine.rows[-1]["stage"])
            sink.log_onnx(loggers, record)
        sink.log_final_model(loggers, model, paths.wandb_model, pd.DataFrame(engine.rows), parts.task)
    except BaseException:
        sink.finish(loggers, failed=True)
        raise
    sink.finish(loggers, failed=False)
    log.info("results: %s", paths.results)
    return RunResult(pd.DataFrame(parts.engine.rows), parts.module, parts.engine.masks)
