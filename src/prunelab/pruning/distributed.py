"""Agreement across data-parallel ranks: reduce what each rank measured on its own batches."""

import torch
import torch.distributed as dist


def world_size() -> int:
    """Processes in the default group; 1 when not running distributed."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def all_reduce_sum(tensors: list[torch.Tensor]) -> None:
    """Sum `tensors` in place over every rank, in one collective; a no-op on a single process."""
    if world_size() == 1 or not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    for t, part in zip(tensors, flat.split([t.numel() for t in tensors])):
        t.copy_(part.view_as(t))
