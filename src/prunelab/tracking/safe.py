"""A WandbLogger that W&B's own failures never stop."""

import logging

from pytorch_lightning.loggers import WandbLogger
from typing_extensions import override

from prunelab.tracking.session import FolderRun, sync_hint

log = logging.getLogger(__name__)


class SafeWandbLogger(WandbLogger):
    """A WandbLogger whose W&B failures never stop the run: the first one is reported with how to
    upload what was logged, and W&B is left alone for the rest of the run. `kept`: the run folder's
    record of this W&B run (which stages it holds), None outside a run folder."""

    def __init__(self, experiment, save_dir: str, log_final_model: bool = False, kept: FolderRun | None = None):
        super().__init__(experiment=experiment, save_dir=save_dir)
        self.log_final_model, self.kept, self.broken = log_final_model, kept, False

    @classmethod
    def over(cls, logger: WandbLogger) -> "SafeWandbLogger":
        """`logger` itself when it is one, else a SafeWandbLogger over the W&B run of a plain WandbLogger."""
        return logger if isinstance(logger, cls) else cls(logger.experiment, logger.save_dir)

    def holds(self, stage: int) -> bool:
        """Whether the W&B run holds stage `stage` already: it was logged before the run was killed and continued."""
        return self.kept is not None and self.kept.holds(stage)

    def logged(self, stage: int) -> None:
        """Stage `stage` went to the W&B run (unless W&B failed)."""
        if self.kept is not None and not self.broken:
            self.kept.add(stage)

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
