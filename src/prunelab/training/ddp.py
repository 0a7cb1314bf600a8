"""Plumbing that keeps data-parallel training consistent when pruning replaces parameters."""

from torch.nn.parallel import DistributedDataParallel


def rewrap_ddp(trainer) -> None:
    """Wrap the LightningModule in a new DDP: the old wrapper still references parameters that surgery replaced."""
    strategy = trainer.strategy
    if isinstance(strategy.model, DistributedDataParallel):
        strategy.model = strategy.lightning_module
        strategy.configure_ddp()
