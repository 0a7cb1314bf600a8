"""Checkpoints that let a killed run continue: one after every epoch, written atomically, and
stamped with the settings of the run that wrote them so that a different run refuses them.

Everything a run needs to continue is in the checkpoint: the model, the optimizer and LR
schedule, the loop counters and the stage engine's state (`training.engine.EngineState`).
Data order and random draws are functions of (seed, epoch) (`prunelab.seeds`), so a resumed
run computes what an uninterrupted one would.
"""

import pickle
import zipfile
from pathlib import Path

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins import TorchCheckpointIO
from pytorch_lightning.callbacks import ModelCheckpoint

from prunelab.atomic import replacing
from prunelab.errors import ConfigError
from prunelab.paths import RunPaths

STAMP = "prunelab"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file, then renames it: a kill never leaves half a file."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        with replacing(path) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)


class Stamp(pl.Callback):
    """Writes `kind` ("run" or "dense") and the settings that determine it into every checkpoint."""

    def __init__(self, kind: str, settings: dict):
        self.kind, self.settings = kind, settings

    @property
    def stamp(self) -> dict:
        return {"kind": self.kind, "settings": self.settings}

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        checkpoint[STAMP] = self.stamp


class EveryEpoch(ModelCheckpoint):
    """Lightning's ModelCheckpoint, which does not take over the record of a checkpoint written in another folder:
    a run that starts from the store's dense model keeps its own (Lightning would take over only the path of the
    other folder's checkpoint, which it never deletes, and warn that the folder changed)."""

    @property
    def state_key(self) -> str:
        """ModelCheckpoint's key (Lightning's keys start with the class name): the one checkpoints already hold."""
        return ModelCheckpoint.__qualname__ + super().state_key.removeprefix(type(self).__qualname__)

    def load_state_dict(self, state_dict: dict) -> None:
        if state_dict.get("dirpath", self.dirpath) == self.dirpath:
            super().load_state_dict(state_dict)


def checkpointing(paths: RunPaths, stamp: Stamp) -> dict:
    """Trainer arguments that write `paths.last_checkpoint` after every training epoch."""
    every_epoch = EveryEpoch(
        dirpath=paths.checkpoints, filename=paths.last_checkpoint.stem, save_top_k=1,
        save_on_train_epoch_end=True, enable_version_counter=False,
    )
    return {"callbacks": [stamp, every_epoch], "plugins": [AtomicCheckpointIO()], "enable_checkpointing": True}


def differences(mine: dict, theirs: dict, prefix: str = "") -> list[str]:
    """`setting: <theirs> in the checkpoint, <mine> now` for every setting that differs."""
    out = []
    for key in sorted(set(mine) | set(theirs), key=str):
        a, b = mine.get(key, "<default>"), theirs.get(key, "<default>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {b} in the checkpoint, {a} now")
    return out


def load(path: Path | str, setting: str, fix: str, **kwargs) -> dict:
    """`torch.load(path)` of a dict; a ConfigError naming `setting` and `fix` when the file is damaged or not one."""
    try:
        found = torch.load(path, map_location="cpu", weights_only=True, **kwargs)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile) as err:
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(setting, f"{path} is damaged or not a PyTorch checkpoint ({why})", fix) from None
    if not isinstance(found, dict):
        raise ConfigError(setting, f"{path} holds a {type(found).__name__}, not a checkpoint or state_dict", fix)
    return found


def check(path: Path, stamp: Stamp, owner: Path) -> Path:
    """`path` if its checkpoint was written with `stamp`'s settings, else a ConfigError saying what differs.

    `owner` is the folder to delete to start afresh.
    """
    restart = f"delete {path.parent} to restart the run from its start"
    found = load(path, "resume", restart, mmap=True).get(STAMP) or {}
    if found != stamp.stamp:
        kind = [f"a {found.get('kind')} checkpoint, not a {stamp.kind} one"] if found.get("kind") != stamp.kind else []
        diff = kind + differences(stamp.settings, found.get("settings", {}))
        raise ConfigError(
            "resume", f"{path} was written by a different run ({'; '.join(diff[:5]) or 'no settings stamped'})",
            f"delete {owner} to start afresh, or give another store_dir",
        )
    return path
