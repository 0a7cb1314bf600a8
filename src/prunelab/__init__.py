"""prunelab: a research harness for neural-network pruning experiments.

`prunelab.prune`, `prunelab.hold_masks`, `prunelab.pruner` and `prunelab.pruning_callback` (see `prunelab.api`)
load on first use, so `import prunelab` stays light.
"""

import importlib

from prunelab.version import __version__

__all__ = ["prune", "hold_masks", "pruner", "pruning_callback", "methods"]


def __getattr__(name: str):
    if name in __all__:  # by name, on first use: the API imports torch and every layer below it
        return getattr(importlib.import_module("prunelab.api"), name)
    raise AttributeError(f"module 'prunelab' has no attribute {name!r}")
