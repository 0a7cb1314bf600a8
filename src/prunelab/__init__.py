"""prunelab: a research harness for neural-network pruning experiments."""

__version__ = "0.1.0"
