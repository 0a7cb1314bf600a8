"""The run specification: the raw config read once, at the entrance, into what every lower layer needs."""

from dataclasses import dataclass, replace
from functools import partial
from operator import itemgetter
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from prunelab.config import build
from prunelab.labels import run_labels, run_name
from prunelab.paths import RunPaths, run_folder
from prunelab.runs import identity, schemas
from prunelab.runs.optimizer import check_optimizer


@dataclass(frozen=True)
class RunSpec:
    """One run: its resolved config, labels, result-determining settings and their hash, its folder.

    `paths` is the run's folder in the store (`<store_dir>/runs/<name>-<key>`), or the job's own
    folder when there is no store.
    """

    config: dict
    labels: dict
    settings: dict
    key: str
    dense_settings: dict
    paths: RunPaths

    @property
    def seed(self) -> int:
        return self.labels["seed"]

    def at(self, folder: Path | str) -> "RunSpec":
        """The same run, kept in `folder` instead (the store still shares its dense model)."""
        return replace(self, paths=RunPaths(Path(folder)))

    @property
    def shares_dense(self) -> bool:
        """Whether the dense model comes from the store's cache (on, with a store, dense training, no checkpoint)."""
        c = self.config
        return bool(c["cache"] and c["store_dir"] and not c["dense_checkpoint"] and c["schedule"]["pretrain_epochs"] > 0)


def resolve(cfg: DictConfig) -> dict:
    """The resolved plain config, without Hydra's own node."""
    plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    plain.pop("hydra", None)
    return plain


# The nodes whose values the built object checks (those of several settings at once), before any training.
BUILT = {"schedule": build, "pruning": build, "optimizer": check_optimizer}


def check(cfg: DictConfig) -> None:
    """The checks of `cfg` that need neither data nor a model; a ConfigError names the first bad setting.

    They run in the order of what they import: the top-level settings, then the keys of every node whose schema
    is cached (no import), then, by `schemas.NO_TORCH_NODES`, `TORCH_NODES`, `LIGHTNING_NODES`, each node's keys
    (unless cached) and values (the schedule, the pruner and the optimizer built), so that a bad setting answers
    before the imports it does not need.
    """
    plain = schemas.check_settings(cfg)
    steps = []
    for cost, names in enumerate((schemas.NO_TORCH_NODES, schemas.TORCH_NODES, schemas.LIGHTNING_NODES), start=1):
        for name in names:
            steps.append((0 if schemas.cached(plain, name) else cost, partial(schemas.check_nodes, plain, [name])))
            if name in BUILT:
                steps.append((cost, partial(BUILT[name], plain[name])))
    for _, step in sorted(steps, key=itemgetter(0)):
        step()


def from_config(cfg: DictConfig, job_dir: Path | str) -> RunSpec:
    """Check `cfg` (`check`) and turn it into a RunSpec."""
    check(cfg)
    config = resolve(cfg)
    labels, settings = run_labels(config), identity.settings(config)
    key = identity.digest(settings)
    paths = run_folder(config["store_dir"], run_name(labels), key) if config["store_dir"] else RunPaths(Path(job_dir))
    return RunSpec(config, labels, settings, key, identity.dense_settings(config), paths)
