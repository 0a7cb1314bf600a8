"""One pruning run: config in, results (one row per stage) out."""

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from prunelab import cache, resume, schemas, store, tracking
from prunelab.callback import PruningCallback
from prunelab.config import build
from prunelab.errors import ConfigError
from prunelab.export import save_model
from prunelab.gather import final_layers, method_family
from prunelab.metrics import Meter
from prunelab.module import ClassificationModule
from prunelab.pruning.masks import Masks

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a finished run leaves: one row per stage, the trained module and its final masks."""

    results: pd.DataFrame
    module: ClassificationModule
    masks: Masks | None


def load_dense(model: nn.Module, path: str) -> None:
    """Load a dense model from a Lightning checkpoint or a plain state_dict file."""
    if not Path(path).is_file():
        raise ConfigError("dense_checkpoint", f"no file at {path}", "give the path of a .ckpt or .pt file, or null")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if "state_dict" in state:
        state = {k.removeprefix("model."): v for k, v in state["state_dict"].items() if k.startswith("model.")}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise ConfigError("dense_checkpoint", f"does not fit model={model.__class__.__name__} ({first})",
                          "give a checkpoint of the same model and dataset") from None


def run_info(cfg: DictConfig) -> dict:
    """The labels every results row and W&B run carries."""
    return {"method": cfg.pruning.name, "family": method_family(cfg.pruning), "model": cfg.model.name,
            "dataset": cfg.dataset.name, "schedule": cfg.schedule.name, "seed": int(cfg.seed)}


def prepare(cfg: DictConfig, out_dir: Path):
    """Build and check everything a run needs; every ConfigError is raised here, before training."""
    schemas.check(cfg)
    schedule = build(cfg.schedule)
    datamodule = build(cfg.dataset)
    datamodule.check()
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    model = build(cfg.model)
    pruner = build(cfg.pruning)
    pruner.parameters(model)
    if cfg.dense_checkpoint:
        load_dense(model, cfg.dense_checkpoint)
    module = ClassificationModule(
        model, instantiate(cfg.optimizer), instantiate(cfg.scheduler), num_classes=cfg.dataset.num_classes
    )
    callback = PruningCallback(pruner, schedule, run_info(cfg), results_path=out_dir / "results.csv",
                               meter=Meter(**cfg.metrics), model_factory=partial(build, cfg.model))
    return schedule, datamodule, module, callback


def _trainer(cfg: DictConfig, out_dir: Path, stamp: resume.Stamp, callback: PruningCallback, **kwargs):
    """The configured Trainer, checkpointing every epoch into `out_dir` for resume."""
    ckpt = resume.checkpointing(out_dir, stamp)
    return build(cfg.trainer, callbacks=[callback, *ckpt.pop("callbacks")], default_root_dir=str(out_dir),
                 **ckpt, **kwargs)


def _fit(trainer, module, datamodule, start: Path | None) -> None:
    if start is not None:
        done = torch.load(start, weights_only=True, mmap=True)["epoch"] + 1
        log.info("continuing from %s after epoch %d", start, done)
    trainer.fit(module, datamodule=datamodule, ckpt_path=start, weights_only=True)


def train_dense(cfg: DictConfig, out_dir: Path) -> Path:
    """Dense training only (stage 0), resumable in `out_dir`; returns its final checkpoint."""
    schedule, datamodule, module, callback = prepare(cfg, out_dir)
    stamp = resume.Stamp("dense", cache.dense_settings(cfg))
    last = resume.last_checkpoint(out_dir)
    trainer = _trainer(cfg, out_dir, stamp, callback, max_epochs=schedule.pretrain_epochs, logger=False)
    _fit(trainer, module, datamodule, resume.check(last, stamp, out_dir) if last.is_file() else None)
    return last


def start_checkpoint(cfg: DictConfig, out_dir: Path, stamp: resume.Stamp, processes: int) -> Path | None:
    """Where the run continues from: its own last checkpoint, else the shared dense model, else nothing."""
    last = resume.last_checkpoint(out_dir)
    if last.is_file():
        return resume.check(last, stamp, out_dir)
    if cache.applies(cfg) and processes > 1:  # the other processes of a DDP run would wait on the lock forever
        log.info("dense model: not shared, this run trains it in %d processes", processes)
    elif cache.applies(cfg):
        dense = cache.dense_checkpoint(cfg, lambda work: train_dense(cfg, work))
        return resume.check(dense, resume.Stamp("dense", cache.dense_settings(cfg)), dense.parent)
    return None


def run(cfg: DictConfig, out_dir: Path) -> RunResult:
    """Dense training, then prune -> evaluate -> fine-tune -> evaluate per target; returns the rows.

    A run continues from the last checkpoint in `out_dir` when there is one.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    schedule, datamodule, module, callback = prepare(cfg, out_dir)
    stamp = resume.Stamp("run", store.settings(cfg))
    config = OmegaConf.to_container(cfg, resolve=True)
    logger = build(cfg.logger, save_dir=str(out_dir), run_config=config)
    loggers = [logger] if logger else []
    try:  # the W&B run is finished whatever happens, and marked failed when the run fails
        trainer = _trainer(cfg, out_dir, stamp, callback, max_epochs=schedule.total_epochs, logger=logger)
        _fit(trainer, module, datamodule, start_checkpoint(cfg, out_dir, stamp, trainer.world_size))
        if cfg.save_model and trainer.is_global_zero:
            save_model(out_dir, module.model, callback.masks, config, datamodule.input_shape,
                       getattr(callback.pruner, "history", []))
        layers = final_layers(pd.DataFrame(callback.layer_rows)) if callback.layer_rows else None
        tracking.log_run_end(loggers, pd.DataFrame(callback.rows), layers, module.model, out_dir)
    except BaseException:
        tracking.finish(loggers, failed=True)
        raise
    tracking.finish(loggers, failed=False)
    log.info("results: %s", out_dir / "results.csv")
    return RunResult(pd.DataFrame(callback.rows), module, callback.masks)
