"""Helpers for config nodes: every group node has a `name` label beside its `_target_`."""

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf


# Keys that label a node rather than configure its target (`family`: how a pruning method is grouped).
LABELS = ("name", "family")


def build(node: DictConfig | dict, **kwargs: Any) -> Any:
    """Instantiate a group node, leaving out its labels (`name`, `family`); `kwargs` are passed as they are."""
    plain = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    for label in LABELS:
        plain.pop(label, None)
    return instantiate(plain, _partial_=True)(**kwargs)
