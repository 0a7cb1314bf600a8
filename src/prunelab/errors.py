"""What stops a run: bad user input (the one error type for it, raised before any training starts), a
diverged loss, Ctrl-C."""


class ConfigError(ValueError):
    """A setting the user gave cannot work; the message names the setting and the fix."""

    def __init__(self, setting: str, problem: str, fix: str):
        self.setting, self.problem, self.fix = setting, problem, fix
        super().__init__(f"{setting}: {problem}. Fix: {fix}")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped the run kept in `folder`; running the same command again continues it."""

    def __init__(self, folder):
        self.folder = folder
        super().__init__(f"the run in {folder} stopped; run the same command again to continue it from its last "
                         "checkpoint")


class Diverged(RuntimeError):
    """Training produced a non-finite loss; carries the stage and sparsity where it happened."""

    def __init__(self, stage: int, sparsity: float, epoch: int):
        self.stage, self.sparsity, self.epoch = stage, sparsity, epoch
        super().__init__(f"non-finite training loss in epoch {epoch} (stage {stage}, sparsity {sparsity:.4f})")
