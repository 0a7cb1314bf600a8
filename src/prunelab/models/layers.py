"""Layers the model constructors share, and their initialisation."""

from torch import nn


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
