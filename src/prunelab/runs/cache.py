"""Dense models trained once per (model, dataset, dense training, seed) and shared by every run.

An entry is `<store_dir>/dense/<hash>/dense.ckpt`: the Lightning checkpoint at the end of dense
training, from which every run that needs it continues, so every method starts from the same
weights. Runs in parallel take a file lock: one trains, the others wait and reuse. An entry is
read only once its `complete` marker exists, which is written after the checkpoint is in place.
"""

import logging
import os
import shutil
from pathlib import Path
from typing import Callable

from prunelab import atomic
from prunelab.paths import DensePaths, dense_entry
from prunelab.runs import identity
from prunelab.runs.lock import locked
from prunelab.runs.spec import RunSpec

log = logging.getLogger(__name__)


def entry(spec: RunSpec) -> DensePaths:
    """The files of `spec`'s dense model in the store (keyed by `identity.dense_settings`)."""
    return dense_entry(spec.config["store_dir"], identity.digest(spec.dense_settings))


def dense_checkpoint(spec: RunSpec, train: Callable[[Path], Path]) -> Path:
    """The shared dense checkpoint of `spec`; trained with `train(work_dir) -> checkpoint` if none exists."""
    dense = entry(spec)
    if not dense.complete.exists():
        dense.root.parent.mkdir(parents=True, exist_ok=True)
        with locked(dense.lock, "dense model: waiting for the run that trains it"):
            if not dense.complete.exists():
                _publish(dense, spec.dense_settings, train)
                return dense.checkpoint
    log.info("dense model: reusing %s", dense.root)
    return dense.checkpoint


def _publish(dense: DensePaths, settings: dict, train: Callable[[Path], Path]) -> None:
    """Train in a work folder (continuing a previous attempt that died), then move the result into place."""
    log.info("dense model: training %s", dense.root)
    checkpoint = train(dense.work)
    dense.root.mkdir(exist_ok=True)
    atomic.write_json(dense.settings, settings)
    os.replace(checkpoint, dense.checkpoint)
    dense.complete.touch()
    shutil.rmtree(dense.work)
    with open(dense.trained_log, "a") as fh:  # one line per dense training: what reuse saved
        fh.write(f"{dense.root.name}\n")
