"""The optimizer's settings, checked by its own class before data or model are built."""

import inspect

import torch
from hydra.utils import get_object

from prunelab.errors import ConfigError


def check_optimizer(node: dict) -> None:
    """Raise a ConfigError when the optimizer's class rejects its settings (built over one stand-in tensor),
    naming `optimizer.<key>` for the first setting whose default value ends that complaint, else `optimizer`."""
    target = node["_target_"]
    optimizer = get_object(target)
    settings = {k: v for k, v in node.items() if not k.startswith("_")}
    why = _rejects(optimizer, settings)
    if why is None:
        return
    defaults = {name: p.default for name, p in inspect.signature(optimizer).parameters.items()
                if p.default is not inspect.Parameter.empty}
    for key, value in settings.items():
        if key in defaults and _rejects(optimizer, {**settings, key: defaults[key]}) != why:
            raise ConfigError(f"optimizer.{key}", f"{value!r} is rejected by {target} ({why})",
                              f"set optimizer.{key} to a value {target} takes, e.g. its default {defaults[key]}")
    raise ConfigError("optimizer", f"{target} rejects its settings {settings} ({why})", f"give settings {target} takes")


def _rejects(optimizer, settings: dict) -> str | None:
    """Why `optimizer(params, **settings)` fails (its message's first line), None when it does not."""
    try:
        optimizer([torch.zeros(1, requires_grad=True)], **settings)
    except (ValueError, TypeError, RuntimeError) as err:
        return str(err).splitlines()[0] if str(err) else type(err).__name__
    return None
