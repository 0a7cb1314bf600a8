"""Any torchvision classification model by name, randomly initialised or with torchvision's pretrained weights."""

import difflib
from collections.abc import Sequence

import torchvision
from torch import nn

from prunelab.errors import ConfigError
from prunelab.models.shapes import chw
from prunelab.models.weights import pretrained_model, resolve_weights

_COMMON = ["resnet18", "resnet50", "vgg16_bn", "mobilenet_v2", "efficientnet_b0"]
_FIX_CHANNELS = "use a 3-channel dataset (cifar10, cifar100, imagefolder, synthetic with input_shape=[3,H,W])"


def torchvision_model(arch: str, input_shape: Sequence[int], num_classes: int, weights: str | None = None,
                      download: bool = False) -> nn.Module:
    """`torchvision.models.get_model(arch)` with `num_classes` outputs, randomly initialised or with `weights`.

    `weights` names torchvision weights of `arch` (`DEFAULT`, `ResNet18_Weights.IMAGENET1K_V1`); they are read
    from torch.hub's cache (`$TORCH_HOME/hub/checkpoints`) and downloaded there only when `download` is true.
    """
    names = torchvision.models.list_models(module=torchvision.models)
    if arch not in names:
        hints = ", ".join(difflib.get_close_matches(arch, names, n=5) or _COMMON)
        fix = f"pick one of {hints} (see torchvision.models.list_models())"
        raise ConfigError("model.arch", f"unknown torchvision model {arch!r}", fix)
    channels = chw(input_shape)[0]
    if channels != 3:
        raise ConfigError("dataset", f"torchvision models take 3-channel inputs, got {channels}", _FIX_CHANNELS)
    if weights is None:
        return torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
    return pretrained_model(arch, resolve_weights(arch, weights), num_classes, download)
