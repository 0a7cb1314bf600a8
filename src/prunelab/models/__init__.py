"""Model zoo; each constructor takes `input_shape` (C, H, W) and `num_classes`, and ends in its Linear classifier."""

from prunelab.models.digits import DigitsCNN
from prunelab.models.lenet import LeNet5
from prunelab.models.mlp import MLP
from prunelab.models.resnet import CifarResNet
from prunelab.models.timm_zoo import timm_model
from prunelab.models.vgg import VGG16BN
from prunelab.models.zoo import torchvision_model

__all__ = ["CifarResNet", "DigitsCNN", "LeNet5", "MLP", "VGG16BN", "timm_model", "torchvision_model"]
