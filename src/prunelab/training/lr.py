"""Learning-rate schedules (the config's `scheduler`), built afresh for every stage; not the pruning schedule."""

import math

import torch


def cosine(optimizer: torch.optim.Optimizer, epochs: int):
    """Cosine decay to zero over the stage's epochs."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))


def warmup_cosine_factor(epoch: int, epochs: int, warmup_epochs: int) -> float:
    """The multiple of the peak learning rate at `epoch` (0-based) of `epochs`: a linear rise over the first
    `warmup_epochs` ((e + 1) / (warmup_epochs + 1)), then cosine decay from the peak towards 0 at the stage's end.
    The warm-up never takes the whole stage: a stage of n epochs warms up for at most n - 1."""
    epochs = max(epochs, 1)
    warmup = min(warmup_epochs, epochs - 1)
    if epoch < warmup:
        return (epoch + 1) / (warmup + 1)
    return 0.5 * (1 + math.cos(math.pi * (epoch - warmup) / (epochs - warmup)))


def warmup_cosine(optimizer: torch.optim.Optimizer, epochs: int, warmup_epochs: int):
    """Linear warm-up over the first `warmup_epochs`, then cosine decay to zero (`warmup_cosine_factor`)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: warmup_cosine_factor(epoch, epochs, warmup_epochs))


def constant(optimizer: torch.optim.Optimizer, epochs: int):
    """The optimizer's learning rate throughout."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def step(optimizer: torch.optim.Optimizer, epochs: int, decays: int = 10, gamma: float = 0.1):
    """The optimizer's learning rate times `gamma` after every 1/`decays` of the stage's epochs (SNIP's, Lee et al.
    2019: 0.1 at every 25k of its 250k iterations on MNIST, decays=10)."""
    period = max(epochs, 1) / decays
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: gamma ** int(epoch // period))
