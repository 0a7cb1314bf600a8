"""The training loss every task shares."""

import torch
import torch.nn.functional as F


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """The cross-entropy of (..., classes) logits against (...) class ids: a classifier's (N, C) logits against (N,)
    labels as `F.cross_entropy`, a language model's (N, T, vocabulary) against (N, T) next tokens, per token."""
    return F.cross_entropy(logits.flatten(0, -2), targets.flatten(), reduction=reduction)
