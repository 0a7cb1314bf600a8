"""The one error type for bad user input, raised before any training starts."""


class ConfigError(ValueError):
    """A setting the user gave cannot work; the message names the setting and the fix."""

    def __init__(self, setting: str, problem: str, fix: str):
        self.setting, self.problem, self.fix = setting, problem, fix
        super().__init__(f"{setting}: {problem}. Fix: {fix}")
