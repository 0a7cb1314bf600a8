"""Learning-rate schedules (the config's `scheduler`), built afresh for every stage; not the pruning schedule."""

import torch


def cosine(optimizer: torch.optim.Optimizer, epochs: int):
    """Cosine decay to zero over the stage's epochs."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))


def constant(optimizer: torch.optim.Optimizer, epochs: int):
    """The optimizer's learning rate throughout."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
