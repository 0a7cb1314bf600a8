"""Helpers for config nodes: every group node has a `name` label beside its `_target_`."""

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf


def build(node: DictConfig | dict, **kwargs: Any) -> Any:
    """Instantiate a group node, leaving out its `name` label; `kwargs` are passed as they are."""
    plain = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    plain.pop("name", None)
    return instantiate(plain, _partial_=True)(**kwargs)
