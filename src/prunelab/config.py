"""Helpers for config nodes: every group node has a `name` label beside its `_target_`."""

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from prunelab.errors import ConfigError
from prunelab.keys import LABELS


def build(node: DictConfig | dict, **kwargs: Any) -> Any:
    """Instantiate a group node, leaving out its labels (`name`, `family`); `kwargs` are passed as they are.

    A ConfigError raised by a nested node (e.g. `pruning.criterion`) comes out as itself, not
    wrapped in Hydra's InstantiationException.
    """
    plain = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    for label in LABELS:
        plain.pop(label, None)
    try:
        return instantiate(plain, _partial_=True)(**kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, ConfigError):
            raise err.__cause__ from None
        raise
