"""Structural pruning: which models it accepts (`support`), the one adapter to torch-pruning (`adapter`), channel
scores (`scorer`), the pruner (`pruner`) and physical removal (`surgery`)."""

from prunelab.pruning.structural.pruner import StructuralPruner

__all__ = ["StructuralPruner"]
