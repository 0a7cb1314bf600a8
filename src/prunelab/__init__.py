"""prunelab: a research harness for neural-network pruning experiments.

`prunelab.prune`, `prunelab.pruner` and `prunelab.pruning_callback` (see `prunelab.api`) load on first use,
so `import prunelab` stays light.
"""

import importlib

__version__ = "0.1.0"
__all__ = ["prune", "pruner", "pruning_callback", "methods"]


def __getattr__(name: str):
    if name in __all__:  # by name: lower layers read `prunelab.__version__` and must not depend on the API above
        return getattr(importlib.import_module("prunelab.api"), name)
    raise AttributeError(f"module 'prunelab' has no attribute {name!r}")
