"""Learning-rate schedules (the config's `scheduler`), built afresh for every stage; not the pruning schedule."""

import torch


def cosine(optimizer: torch.optim.Optimizer, epochs: int):
    """Cosine decay to zero over the stage's epochs."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))


def constant(optimizer: torch.optim.Optimizer, epochs: int):
    """The optimizer's learning rate throughout."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def step(optimizer: torch.optim.Optimizer, epochs: int, decays: int = 10, gamma: float = 0.1):
    """The optimizer's learning rate times `gamma` after every 1/`decays` of the stage's epochs (SNIP's, Lee et al.
    2019: 0.1 at every 25k of its 250k iterations on MNIST, decays=10)."""
    period = max(epochs, 1) / decays
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: gamma ** int(epoch // period))
