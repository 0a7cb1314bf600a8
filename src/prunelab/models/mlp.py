"""Fully connected networks, e.g. LeNet-300-100."""

import math
from collections.abc import Sequence

from torch import nn

from prunelab.models.layers import initialise


class MLP(nn.Sequential):
    """Flatten, then Linear+ReLU per hidden width, then a Linear classifier; `init` as `layers.initialise`."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, hidden: Sequence[int] = (300, 100),
                 init: str = "default"):
        widths = [math.prod(int(d) for d in input_shape), *(int(h) for h in hidden)]
        layers: list[nn.Module] = [nn.Flatten()]
        for cin, cout in zip(widths, widths[1:]):
            layers += [nn.Linear(cin, cout), nn.ReLU(inplace=True)]
        super().__init__(*layers, nn.Linear(widths[-1], num_classes))
        initialise(self, init)
