"""Pruning: criteria (scores), selection (scores + target -> mask), masks, the pruner."""

from prunelab.pruning.contract import Pruner
from prunelab.pruning.criteria import Magnitude, Random, ScoreContext
from prunelab.pruning.gradient import SNIP, GraSP, Taylor
from prunelab.pruning.masks import (
    Masks,
    apply_masks,
    count_parameters,
    prunable_parameters,
    sparsity,
)
from prunelab.pruning.pruner import UnstructuredPruner
from prunelab.pruning.select import select
from prunelab.pruning.synflow import SynFlow

__all__ = [
    "Magnitude", "Random", "ScoreContext", "Masks", "apply_masks", "count_parameters",
    "prunable_parameters", "sparsity", "Pruner", "UnstructuredPruner", "select",
    "Taylor", "SNIP", "GraSP", "SynFlow",
]
