"""Layers the model constructors share, and their initialisation."""

import math

from torch import nn

from prunelab.errors import ConfigError

# std of a normal truncated at +-2 std, relative to the untruncated one: TensorFlow divides by it
_TRUNCATED_STD = 0.87962566103423978


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


def variance_scaling(model: nn.Module) -> nn.Module:
    """Every Linear and Conv weight from a normal truncated at two standard deviations with variance 1/fan_in,
    biases zero: TensorFlow's `variance_scaling_initializer()`, which SNIP's code (Lee et al. 2019) uses."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            fan_in = nn.init._calculate_fan_in_and_fan_out(m.weight)[0]
            std = math.sqrt(1.0 / fan_in) / _TRUNCATED_STD
            nn.init.trunc_normal_(m.weight, 0.0, std, -2 * std, 2 * std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


INITS = {"default": lambda model: model, "variance_scaling": variance_scaling}  # `model.init`


def initialise(model: nn.Module, init: str) -> nn.Module:
    """`model` initialised by `init`: `default` leaves the layers' own initialisers (PyTorch's), or one of `INITS`."""
    if init not in INITS:
        raise ConfigError("model.init", f"unknown initialisation {init!r}", f"use one of {list(INITS)}")
    return INITS[init](model)
