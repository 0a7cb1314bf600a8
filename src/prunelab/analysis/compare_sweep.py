"""`CompareSweep`, the Hydra callback that compares a multirun's runs when it ends. Hydra loads every callback's
module for every command, single runs included, so this one loads pandas, matplotlib and W&B only at the end of
a multirun: a bad config answers without them."""

import logging
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)


class CompareSweep(Callback):
    """Hydra callback: when every job of a multirun has returned, gather the sweep's complete runs and
    write comparison.png, comparison.csv and comparison.md in the sweep directory; with logger=wandb,
    log the same to one summary run in the sweep's W&B group (`prunelab-report` builds the same comparison)."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from prunelab.analysis import compare, gather
        from prunelab.tracking import session, upload

        sweep_dir = Path(config.hydra.sweep.dir)
        sweep = gather.gather([sweep_dir])
        if sweep.runs.empty:
            log.warning("no complete runs in %s: nothing to compare", sweep_dir)
            return
        comparison = compare.compare(sweep)
        paths = compare.write(comparison, sweep_dir)
        log.info("comparison of %d runs: %s", sweep.runs["run"].nunique(), ", ".join(map(str, paths.files())))
        if config.logger.name == "wandb":
            logger = config.logger
            upload.log_comparison(comparison, paths.figure, str(sweep_dir),
                                  group=logger.group or session.group_name(config.hydra.sweep.dir),
                                  mode=logger.mode, tags=list(logger.tags), project=logger.project,
                                  entity=logger.get("entity"))
