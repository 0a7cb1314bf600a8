"""Physical removal: what a set of torch-pruning groups removes, and fixing modules up after it."""

import copy
import sys

import torch
from torch import nn

from prunelab.pruning.masks import Masks


def _loaded(module: str, name: str) -> tuple[type, ...]:
    """Class `name` of `module` when that module is loaded, else none: a model of a library that is not loaded
    cannot exist, and importing torchvision or timm to find out takes seconds."""
    found = sys.modules.get(module)
    return (getattr(found, name),) if found else ()


def timm_attention() -> tuple[type, ...]:
    """timm's ViT attention class, when timm is loaded."""
    return _loaded("timm.models.vision_transformer", "Attention")


def _refresh_timm_heads(m: nn.Module) -> None:
    # timm's attention reshapes by its cached head count; head size is kept when heads are removed
    m.num_heads = m.qkv.out_features // (3 * m.head_dim)
    m.attn_dim = m.num_heads * m.head_dim


def _refreshers() -> dict:
    """Modules that cache a width their forward needs, and how to refresh it after channels were removed."""
    vits = _loaded("torchvision.models.vision_transformer", "VisionTransformer")
    found = {kind: lambda m: setattr(m, "hidden_dim", m.conv_proj.out_channels) for kind in vits}
    found.update({kind: _refresh_timm_heads for kind in timm_attention()})
    return found


def refresh_attributes(model: nn.Module) -> None:
    """Update widths that modules cache outside their parameters (torchvision's ViT, timm's attention)."""
    refreshers = _refreshers()
    for m in model.modules():
        for kind, refresh in refreshers.items():
            if isinstance(m, kind):
                refresh(m)


@torch.no_grad()
def removal_masks(model: nn.Module, groups) -> Masks:
    """Masks (True = kept) of the entries of `model`'s parameters that pruning `groups` would remove.

    Each group is removed from a copy whose parameters hold their own flat indices; the indices
    that survive are the kept entries. Parameters the groups do not touch are left out.
    """
    probe = copy.deepcopy(model).double()
    for p in probe.parameters():
        p.copy_(torch.arange(p.numel(), dtype=torch.float64, device=p.device).view_as(p))
    probe_modules = dict(probe.named_modules())
    module_names = {id(m): n for n, m in model.named_modules()}
    param_names = {id(p): n for n, p in model.named_parameters()}
    for group in groups:
        for dep, idxs in group:
            target = dep.target.module
            if isinstance(target, nn.Parameter):  # an unwrapped parameter, e.g. a position embedding
                parent, _, leaf = param_names[id(target)].rpartition(".")
                owner = probe.get_submodule(parent)
                setattr(owner, leaf, dep.handler(getattr(owner, leaf), idxs))
            elif id(target) in module_names:  # the rest are torch-pruning's stand-ins for functional ops
                dep.handler(probe_modules[module_names[id(target)]], idxs)
    shapes = {n: p.shape for n, p in model.named_parameters()}
    masks = {}
    for name, p in probe.named_parameters():
        if p.shape == shapes[name]:
            continue
        keep = torch.zeros(shapes[name].numel(), dtype=torch.bool, device=p.device)
        keep[p.flatten().long()] = True
        masks[name] = keep.view(shapes[name])
    return masks
