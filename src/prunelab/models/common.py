"""Helpers shared by the model constructors."""

from collections.abc import Sequence

from torch import nn

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


def init_weights(model: nn.Module) -> nn.Module:
    """Kaiming-normal convs (He et al.), unit-scale BatchNorm; Linear keeps PyTorch's default."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    """A 3x3 same-padding conv, BatchNorm and ReLU."""
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
