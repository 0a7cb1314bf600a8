"""A WandbLogger that W&B's own failures never stop."""

import logging

from pytorch_lightning.loggers import WandbLogger
from typing_extensions import override

from prunelab.tracking.session import sync_hint

log = logging.getLogger(__name__)


class SafeWandbLogger(WandbLogger):
    """A WandbLogger whose W&B failures never stop the run: the first one is reported with how to
    upload what was logged, and W&B is left alone for the rest of the run."""

    def __init__(self, experiment, save_dir: str, log_final_model: bool = False):
        super().__init__(experiment=experiment, save_dir=save_dir)
        self.log_final_model, self.broken = log_final_model, False
        self.guard(lambda run: (run.define_metric("trainer/global_step"),
                                run.define_metric("*", step_metric="trainer/global_step", step_sync=True)))

    def guard(self, fn, *args):
        """`fn(run, *args)` unless W&B already failed in this run; a W&B error only logs a warning."""
        if self.broken:
            return
        try:
            fn(self.experiment, *args)
        except Exception as err:  # any W&B failure: keep training, keep results.csv
            self.broken = True
            log.warning("W&B failed mid-run (%s); the run goes on without W&B; %s", err, sync_hint(self.experiment))

    @override
    def log_metrics(self, metrics, step=None) -> None:
        self.guard(lambda _: super(SafeWandbLogger, self).log_metrics(metrics, step))

    @override
    def log_hyperparams(self, params) -> None:
        self.guard(lambda _: super(SafeWandbLogger, self).log_hyperparams(params))

    def finish(self, exit_code: int) -> None:
        """Finish the W&B run with `exit_code` (1 marks it failed), even after a W&B failure."""
        try:
            self.experiment.finish(exit_code=exit_code)
        except Exception as err:  # the run's own outcome matters more than W&B's
            log.warning("W&B: could not finish the run (%s); %s", err, sync_hint(self.experiment))
