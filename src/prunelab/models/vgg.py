"""VGG-16 with BatchNorm, CIFAR style: one Linear classifier after global pooling."""

from collections.abc import Sequence

from torch import nn

from prunelab.models.layers import conv_bn_relu, init_weights
from prunelab.models.shapes import chw, require_size

_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG16BN(nn.Sequential):
    """13 conv+BN+ReLU layers in five pooled stages, global average pool, Linear(512, classes)."""

    reset_parameters = init_weights  # also the initialiser of a pruned copy (training.rewind.reinitialise)

    def __init__(self, input_shape: Sequence[int], num_classes: int):
        require_size("vgg16_bn", input_shape, 32, "use a dataset with inputs of at least 32x32 (cifar10, cifar100)")
        layers, cin = [], chw(input_shape)[0]
        for v in _CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += conv_bn_relu(cin, v)
                cin = v
        super().__init__(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes))
        init_weights(self)
