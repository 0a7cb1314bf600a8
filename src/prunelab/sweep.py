"""At the end of a multirun: compare the sweep's methods in its directory and in W&B."""

import logging
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from prunelab import compare, gather, tracking

log = logging.getLogger(__name__)


class CompareSweep(Callback):
    """Hydra callback: when every job of a multirun has returned, gather the sweep's complete runs and
    write comparison.png, comparison.csv and comparison.md in the sweep directory; with logger=wandb,
    log the same to one summary run in the sweep's W&B group."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep = gather.gather([sweep_dir])
        if sweep.runs.empty:
            log.warning("no complete runs in %s: nothing to compare", sweep_dir)
            return
        comparison = compare.compare(sweep)
        paths = compare.write(comparison, sweep_dir)
        log.info("comparison of %d runs: %s", sweep.runs["run"].nunique(), ", ".join(map(str, paths.values())))
        if config.logger.name == "wandb":
            logger = config.logger
            tracking.log_comparison(comparison, paths["png"], str(sweep_dir),
                                    group=logger.group or tracking.group_name(config.hydra.sweep.dir), mode=logger.mode,
                                    tags=list(logger.tags), project=logger.project, entity=logger.get("entity"))
