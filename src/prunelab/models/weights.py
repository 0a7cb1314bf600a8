"""Pretrained torchvision weights, by torchvision's names: read from torch.hub's cache, downloaded on request."""

import logging
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn
from torchvision.models import WeightsEnum

from prunelab.errors import ConfigError

log = logging.getLogger(__name__)


def resolve_weights(arch: str, name: str) -> WeightsEnum:
    """The weights `name` of model `arch`: e.g. `DEFAULT`, `IMAGENET1K_V1` or `ResNet18_Weights.IMAGENET1K_V1`."""
    options = torchvision.models.get_model_weights(arch)
    try:
        return options.verify(name)
    except KeyError:
        pass
    fix = f"use DEFAULT or one of {[str(w) for w in options]}"
    try:
        other = torchvision.models.get_weight(name)
    except (KeyError, ValueError):
        raise ConfigError("model.weights", f"torchvision has no weights {name!r} for {arch}", fix) from None
    owner = next((m for m in torchvision.models.list_models(module=torchvision.models)
                  if torchvision.models.get_model_weights(m) is type(other)), type(other).__name__)
    raise ConfigError("model.weights", f"{name} are weights for {owner}, not for model.arch={arch}", fix)


def cached_file(weights: WeightsEnum) -> Path:
    """Where torch.hub keeps `weights`: `<TORCH_HOME>/hub/checkpoints/<file name of the weights' URL>`."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name


def pretrained_model(arch: str, weights: WeightsEnum, num_classes: int, download: bool) -> nn.Module:
    """Torchvision model `arch` with `weights` from the cache; a new `num_classes` head when the weights' differs.

    With `download` false a weights file missing from the cache is a ConfigError naming the file and
    where it goes; with it true torchvision downloads it there (checking its hash).
    """
    path = cached_file(weights)
    if not download and not path.is_file():
        raise ConfigError("model.weights", f"{weights} are not in torch.hub's cache ({path} is missing)",
                          f"download {weights.url} to {path}, or set model.download=true")
    try:
        model = torchvision.models.get_model(arch, weights=weights)
    except RuntimeError as err:  # a file that holds no (or other) weights of this architecture
        first = str(err).strip().splitlines()[0]
        raise ConfigError("model.weights", f"{path} does not hold {weights} for {arch} ({first})",
                          f"delete it and download {weights.url} again") from None
    except OSError as err:  # no network
        raise ConfigError("model.download", f"could not download {weights.url} ({err})",
                          f"download it to {path} by hand") from None
    classes = len(weights.meta["categories"])
    if classes != num_classes:
        head = replace_head(model, classes, num_classes)
        log.info("model: %s backbone from %s; new %d-class head %r (the weights have %d classes)",
                 arch, weights, num_classes, head, classes)
    return model


def replace_head(model: nn.Module, classes: int, num_classes: int) -> str:
    """Replace the last Linear or Conv2d with `classes` outputs by a new one with `num_classes`; returns its name."""
    name, old = [(n, m) for n, m in model.named_modules()
                 if isinstance(m, nn.Linear) and m.out_features == classes
                 or isinstance(m, nn.Conv2d) and m.out_channels == classes][-1]
    bias = old.bias is not None
    if isinstance(old, nn.Linear):
        new = nn.Linear(old.in_features, num_classes, bias=bias)
    else:  # SqueezeNet classifies with a 1x1 convolution
        new = nn.Conv2d(old.in_channels, num_classes, old.kernel_size, old.stride, old.padding, bias=bias)
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent), leaf, new.to(old.weight.device))
    return name
