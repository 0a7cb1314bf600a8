"""The optimizer's settings, checked by its own class before data or model are built."""

import functools
import inspect

from hydra.utils import get_object

from prunelab.errors import ConfigError


def check_optimizer(node: dict) -> None:
    """Raise a ConfigError when the optimizer's class rejects its settings, naming `optimizer.<key>` for the first
    setting whose default value ends that complaint, else `optimizer`.

    The class is built over no parameters first: it checks its settings before it takes parameters, and taking
    one loads torch._dynamo (1-2 s), which a bad setting need not wait for. Then over one stand-in tensor, for
    the settings it checks only once it holds parameters (e.g. Adam's `fused` with `foreach`).
    """
    import torch  # loaded by the optimizer's own import

    optimizer = get_object(node["_target_"])
    for params in ([], [torch.zeros(1, requires_grad=True)]):
        _check(optimizer, node, params)


def _check(optimizer, node: dict, params: list) -> None:
    target = node["_target_"]
    settings = {k: v for k, v in node.items() if not k.startswith("_")}
    why = _rejects(optimizer, settings, params)
    if why is None:
        return
    defaults = {name: p.default for name, p in inspect.signature(optimizer).parameters.items()
                if p.default is not inspect.Parameter.empty}
    for key, value in settings.items():
        if key in defaults and _rejects(optimizer, {**settings, key: defaults[key]}, params) != why:
            raise ConfigError(f"optimizer.{key}", f"{value!r} is rejected by {target} ({why})",
                              f"set optimizer.{key} to a value {target} takes, e.g. its default {defaults[key]}")
    raise ConfigError("optimizer", f"{target} rejects its settings {settings} ({why})", f"give settings {target} takes")


def _rejects(optimizer, settings: dict, params: list) -> str | None:
    """Why `optimizer(params, **settings)` fails (its message's first line); None when it does not, or when it only
    says that `params` is empty."""
    why = _complaint(optimizer, settings, params)
    return None if not params and why == _empty_complaint() else why


def _complaint(optimizer, settings: dict, params: list) -> str | None:
    try:
        optimizer(params, **settings)
    except (ValueError, TypeError, RuntimeError) as err:
        return str(err).splitlines()[0] if str(err) else type(err).__name__
    return None


@functools.cache
def _empty_complaint() -> str | None:
    """What torch's optimizer base says when given no parameters."""
    import torch

    return _complaint(torch.optim.Optimizer, {"defaults": {}}, [])
