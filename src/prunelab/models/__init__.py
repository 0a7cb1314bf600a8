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

__all__ = ["CausalLM", "CifarResNet", "Decoder", "DigitsCNN", "LeNet5", "MLP", "VGG16BN", "causal_lm", "decoder",
           "timm_model", "torchvision_model"]


def __getattr__(name: str):
    """`torchvision_model` on first use: torchvision's import takes seconds (it loads torch._dynamo), which no other
    model (nor a bad setting's answer) needs."""
    if name == "torchvision_model":
        from prunelab.models.zoo import torchvision_model

        return torchvision_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
