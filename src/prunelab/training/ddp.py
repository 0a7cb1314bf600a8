"""Plumbing that keeps data-parallel training consistent when pruning replaces parameters."""

import copy

from torch import nn
from torch.nn.parallel import DistributedDataParallel


def _shapes(model: nn.Module) -> dict:
    return {k: v.shape for k, v in model.state_dict().items()}


def restore_dense(model: nn.Module, dense: nn.Module) -> nn.Module:
    """`model` with the weights of `dense` again: in place while the shapes still match (parameter
    objects, and so DDP's references, stay); a fresh copy of `dense` after channels were removed."""
    if _shapes(model) == _shapes(dense):
        model.load_state_dict(dense.state_dict())
        return model
    return copy.deepcopy(dense)


def rewrap_ddp(trainer) -> None:
    """Wrap the LightningModule in a new DDP: the old wrapper still references parameters that surgery replaced."""
    strategy = trainer.strategy
    if isinstance(strategy.model, DistributedDataParallel):
        strategy.model = strategy.lightning_module
        strategy.configure_ddp()
