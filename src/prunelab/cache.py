"""Dense models trained once per (model, dataset, dense training, seed) and shared by every run.

An entry is `<store_dir>/dense/<hash>/dense.ckpt`: the Lightning checkpoint at the end of dense
training, from which every run that needs it continues, so every method starts from the same
weights. Runs in parallel take a file lock: one trains, the others wait and reuse. An entry is
read only once its `complete` marker exists, which is written after the checkpoint is in place.
"""

import fcntl
import json
import logging
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from omegaconf import DictConfig

from prunelab import store

log = logging.getLogger(__name__)

# The schedule's settings that only act after dense training; every other setting of the
# schedule (e.g. a rewind point inside dense training) is part of the key.
AFTER_DENSE = ("schedule.name", "schedule._target_", "schedule.targets", "schedule.finetune_epochs",
               "schedule.cumulative")
DENSE_SETTINGS = ("seed", "model", "dataset", "optimizer", "scheduler", "trainer", "schedule")


def applies(cfg: DictConfig) -> bool:
    """Whether `cfg` takes its dense model from the cache (on, with a store, dense training, no checkpoint)."""
    return bool(cfg.cache and cfg.store_dir and not cfg.dense_checkpoint and cfg.schedule.pretrain_epochs > 0)


def dense_settings(cfg: DictConfig) -> dict:
    """Exactly the settings that determine the dense model, non-default ones only."""
    plain = store.settings(cfg, drop=AFTER_DENSE)
    return {k: plain[k] for k in DENSE_SETTINGS if k in plain}


def entry(cfg: DictConfig) -> Path:
    """The folder of `cfg`'s dense model in the store."""
    return Path(cfg.store_dir) / "dense" / store.digest(dense_settings(cfg))


@contextmanager
def locked(path: Path):
    """Hold an exclusive lock on `path` (released when the process ends, however it ends)."""
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("dense model: waiting for the run that trains it (%s)", path)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def dense_checkpoint(cfg: DictConfig, train: Callable[[Path], Path]) -> Path:
    """The shared dense checkpoint of `cfg`; trained with `train(work_dir) -> checkpoint` if none exists."""
    folder = entry(cfg)
    if not (folder / "complete").exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        with locked(folder.with_suffix(".lock")):
            if not (folder / "complete").exists():
                _publish(folder, dense_settings(cfg), train)
                return folder / "dense.ckpt"
    log.info("dense model: reusing %s", folder)
    return folder / "dense.ckpt"


def _publish(folder: Path, settings: dict, train: Callable[[Path], Path]) -> None:
    """Train in a work folder (continuing a previous attempt that died), then move the result into place."""
    log.info("dense model: training %s", folder)
    work = folder.with_suffix(".work")
    checkpoint = train(work)
    folder.mkdir(exist_ok=True)
    (folder / "settings.json").write_text(json.dumps(settings, indent=1))
    os.replace(checkpoint, folder / "dense.ckpt")
    (folder / "complete").touch()
    shutil.rmtree(work)
    with open(folder.parent / "trained.log", "a") as fh:  # one line per dense training: what reuse saved
        fh.write(f"{folder.name}\n")
