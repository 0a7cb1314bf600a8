"""Model zoo. Classifiers take `input_shape` (C, H, W) and `num_classes`, and end in their Linear classifier;
`causal_lm` builds a language model over token ids."""

from prunelab.models.causal_lm import CausalLM, causal_lm
from prunelab.models.decoder import Decoder, decoder
from prunelab.models.digits import DigitsCNN
from prunelab.models.lenet import LeNet5
from prunelab.models.mlp import MLP
from prunelab.models.resnet import CifarResNet
from prunelab.models.timm_zoo import timm_model
from prunelab.models.vgg import VGG16BN
from prunelab.models.zoo import torchvision_model

__all__ = ["CausalLM", "CifarResNet", "Decoder", "DigitsCNN", "LeNet5", "MLP", "VGG16BN", "causal_lm", "decoder",
           "timm_model", "torchvision_model"]
