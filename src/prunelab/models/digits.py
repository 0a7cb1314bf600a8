"""A small CNN for tiny inputs such as the 8x8 sklearn digits."""

from collections.abc import Sequence

from torch import nn

from prunelab.models.layers import conv_bn_relu, init_weights
from prunelab.models.shapes import chw


class DigitsCNN(nn.Sequential):
    """conv32-conv64-pool-conv64, pooled to 4x4, then fc128 and a classifier; any input >= 2x2."""

    reset_parameters = init_weights  # also the initialiser of a pruned copy (training.rewind.reinitialise)

    def __init__(self, input_shape: Sequence[int], num_classes: int):
        c, _, _ = chw(input_shape)
        super().__init__(
            *conv_bn_relu(c, 32), *conv_bn_relu(32, 64), nn.MaxPool2d(2),
            *conv_bn_relu(64, 64), nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, 128), nn.ReLU(inplace=True),
            nn.Linear(128, num_classes),
        )
        init_weights(self)
