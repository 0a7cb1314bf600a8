"""LeNet-5, Caffe variant (20 and 50 conv filters, 500 hidden units)."""

from collections.abc import Sequence

from torch import nn

from prunelab.models.layers import initialise
from prunelab.models.shapes import chw, require_size


def _after_convs(size: int) -> int:
    # Two rounds of a 5x5 valid conv followed by a 2x2 max pool.
    return ((size - 4) // 2 - 4) // 2


class LeNet5(nn.Sequential):
    """conv20-pool-conv50-pool-fc500-fc; ReLU after every hidden layer; `init` as `layers.initialise`."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, init: str = "default"):
        require_size("lenet5", input_shape, 16, "use dataset=mnist or model=digits_cnn")
        c, h, w = chw(input_shape)
        super().__init__(
            nn.Conv2d(c, 20, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(20, 50, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(50 * _after_convs(h) * _after_convs(w), 500), nn.ReLU(inplace=True),
            nn.Linear(500, num_classes),
        )
        initialise(self, init)
