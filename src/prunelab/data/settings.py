"""Checks of dataset settings, each a one-line ConfigError naming the setting and the fix; the configured shape."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from annotated_types import Ge

from prunelab.errors import ConfigError

# The ranges of the batch settings, in every datamodule's signature (the config check reads them there) and
# checked by the batching itself when built from Python.
BatchSize = Annotated[int, Ge(1)]
Workers = Annotated[int, Ge(0)]
Cutout = Annotated[int, Ge(0)]  # side of the square cut out of each augmented image; 0: none


def check_fraction(setting: str, value: float) -> None:
    """Raise ConfigError unless 0 < value < 1."""
    if not 0 < value < 1:
        raise ConfigError(setting, f"{value} is not strictly between 0 and 1", f"set {setting}=0.1 or similar")


def check_at_least(setting: str, value: int, low: int) -> None:
    """Raise ConfigError unless value >= low."""
    if value < low:
        raise ConfigError(setting, f"must be >= {low}, got {value}", f"set {setting}={max(low, 1)} or more")


@dataclass(frozen=True)
class Shape:
    """`dataset.input_shape` and `dataset.num_classes`: config keys models read; sources with fixed data check them."""

    input_shape: tuple[int, ...]
    num_classes: int

    @classmethod
    def of(cls, input_shape: Sequence[int], num_classes: int) -> "Shape":
        """The shape as configured (a list from YAML), as integers."""
        return cls(tuple(int(s) for s in input_shape), int(num_classes))

    def check_matches(self, input_shape: Sequence[int], num_classes: int) -> None:
        """Raise ConfigError when the configured shape or class count differs from the data's."""
        if self.input_shape != tuple(input_shape):
            raise ConfigError(
                "dataset.input_shape",
                f"{list(self.input_shape)} does not match the data's {list(input_shape)}",
                f"set dataset.input_shape={list(input_shape)}",
            )
        if self.num_classes != num_classes:
            raise ConfigError(
                "dataset.num_classes",
                f"{self.num_classes} does not match the data's {num_classes}",
                f"set dataset.num_classes={num_classes}",
            )
