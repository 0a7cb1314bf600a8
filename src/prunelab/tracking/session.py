"""A W&B run's session: its mode, whether we are logged in, starting it with fallbacks, its name and group, and
its id, which a run folder keeps (`FolderRun`)."""

import json
import logging
import netrc
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from prunelab import atomic
from prunelab.labels import run_name

log = logging.getLogger(__name__)


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


def sync_hint(run) -> str:
    """Where a W&B run's files are and the command that uploads them: every part of a run continued after a kill
    (W&B uploads the parts of one run in the order they were made)."""
    run_dir = Path(run.dir).parent
    return f"its files are in {run_dir}; upload them with: wandb sync {run_dir.parent}/*-{run.id}"


@dataclass
class FolderRun:
    """A run folder's W&B run, kept in `path` (`RunPaths.wandb_run`) until the run is rerun: its id, so that a run
    continued after a kill continues the same W&B run, and how many stages it holds, so that a stage finished
    again after the kill (its checkpoint came before it) is not logged twice."""

    path: Path
    id: str
    stages: int = 0

    @classmethod
    def of(cls, path: Path) -> "FolderRun":
        """The W&B run kept in `path`; a new one (kept there from now on) when there is none or it is damaged."""
        try:
            kept = json.loads(path.read_text())
            return cls(path, str(kept["id"]), int(kept["stages"]))
        except (OSError, ValueError, KeyError, TypeError):
            run = cls(path, "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8)))
            run._keep()
            return run

    def holds(self, stage: int) -> bool:
        return stage < self.stages

    def add(self, stage: int) -> None:
        """Stage `stage` is in the W&B run."""
        self.stages = max(self.stages, stage + 1)
        self._keep()

    def _keep(self) -> None:
        atomic.write_json(self.path, {"id": self.id, "stages": self.stages})


def start_run(mode: str = "auto", **init):
    """`wandb.init(**init)` in `mode`; if that fails (not logged in, no network), offline; if even
    that fails, disabled. Never raises; says where an offline run is and how to upload it."""
    import wandb

    # W&B's own lines (its banner, where the files are, the run's summary) repeat what this module logs; its
    # warnings and errors still show. Applies from the first W&B run of the process on.
    wandb.setup(settings=wandb.Settings(quiet=True, show_info=False))
    wanted = wandb_mode(mode)
    for attempt in dict.fromkeys([wanted, "offline"]):
        try:
            run = wandb.init(mode=attempt, reinit="finish_previous", **init)
        except Exception as err:  # any W&B failure: fall back, never stop the run
            log.warning("W&B: could not start the run in %s mode%s (%s); falling back", attempt,
                        f" at {wandb.setup().settings.base_url}" if attempt == "online" else "",
                        str(err).splitlines()[0])
            wandb.teardown()  # W&B's service keeps the failed run's id in use
            continue
        if run.settings.mode == "offline":
            (log.info if attempt == wanted else log.warning)("W&B: offline run; %s", sync_hint(run))
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
