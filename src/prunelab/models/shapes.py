"""The input shape a model is built for: read as (C, H, W), checked against a model's minimum size."""

from collections.abc import Sequence

from prunelab.errors import ConfigError


def chw(input_shape: Sequence[int]) -> tuple[int, int, int]:
    """Return `input_shape` (a list, tuple or ListConfig) as a (C, H, W) tuple of ints."""
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3:
        problem = f"this model needs a (C, H, W) shape, got {list(shape)}"
        raise ConfigError("dataset.input_shape", problem, "give three sizes, e.g. [3, 32, 32]")
    return shape


def require_size(model: str, input_shape: Sequence[int], minimum: int, fix: str) -> None:
    """Raise ConfigError when the input is smaller than `minimum` x `minimum`."""
    _, h, w = chw(input_shape)
    if min(h, w) < minimum:
        raise ConfigError("model", f"{model} needs inputs of at least {minimum}x{minimum}, got {h}x{w}", fix)
