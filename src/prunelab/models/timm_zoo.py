"""Any timm model by name, randomly initialised or with the weights of a local file."""

import difflib
import importlib
import logging
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from prunelab.errors import ConfigError
from prunelab.models.shapes import chw

log = logging.getLogger(__name__)

_COMMON = ["resnet18", "convnext_atto", "vit_tiny_patch16_224", "efficientnet_b0", "mobilenetv3_small_100"]


def timm_model(arch: str, input_shape: Sequence[int], num_classes: int,
               checkpoint_path: str | None = None) -> nn.Module:
    """`timm.create_model(arch)` with `num_classes` outputs for `input_shape` images.

    `checkpoint_path`: a state_dict of `arch` at timm's default input size (`.pth`, `.bin`, `.safetensors`,
    as timm saves them); a classifier for another number of classes is replaced by a new one. Models with
    a fixed input size (vision transformers) are then resized to `input_shape` by timm's `set_input_size`.
    """
    timm = _timm()
    if not timm.is_model(arch):
        hints = ", ".join(difflib.get_close_matches(arch, timm.list_models(), n=5) or _COMMON)
        raise ConfigError("model.arch", f"unknown timm model {arch!r}", f"pick one of {hints} (see timm.list_models())")
    channels, h, w = chw(input_shape)
    model = timm.create_model(arch, num_classes=num_classes, in_chans=channels)
    if checkpoint_path is not None:
        load_checkpoint(model, Path(checkpoint_path), arch)
    if hasattr(model, "set_input_size") and tuple(model.pretrained_cfg["input_size"][1:]) != (h, w):
        model.set_input_size(img_size=(h, w))
    return model


def load_checkpoint(model: nn.Module, path: Path, arch: str) -> None:
    """Load the state_dict in `path` into timm model `model`, all but a classifier of another width."""
    if not path.is_file():
        raise ConfigError("model.checkpoint_path", f"{path} is not a file", f"give the path of a state_dict of {arch}")
    state = _timm().models.load_state_dict(str(path))  # also unwraps {"state_dict": ...} and reads safetensors
    own = model.state_dict()
    heads = model.pretrained_cfg.get("classifier") or ()
    heads = (heads,) if isinstance(heads, str) else tuple(heads)
    new_head = [k for k in state if k.startswith(tuple(f"{h}." for h in heads))
                and k in own and own[k].shape != state[k].shape]
    for key in new_head:
        del state[key]
    wrong = [k for k in state if k not in own or own[k].shape != state[k].shape]
    missing = [k for k in own if k not in state and k not in new_head]
    if wrong or missing:
        first = (wrong or missing)[0]
        raise ConfigError("model.checkpoint_path", f"{path} does not hold the weights of timm's {arch}"
                          f" ({len(wrong)} unexpected and {len(missing)} missing tensors, e.g. {first!r})",
                          f"give a state_dict saved from timm.create_model({arch!r}) or set model.arch to its model")
    model.load_state_dict(state, strict=False)
    head = f"; new {own[new_head[0]].shape[0]}-class head {heads}" if new_head else ""
    log.info("model: %s weights from %s%s", arch, path, head)


def _timm():
    try:
        return importlib.import_module("timm")
    except ImportError:
        raise ConfigError("model", "timm is not installed", "pip install 'prunelab[timm]'") from None
