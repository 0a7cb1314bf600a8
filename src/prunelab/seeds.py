"""Every seed a run derives from its own, in one place: a resumed run draws what an uninterrupted one would.

Each formula maps (run seed, position) to a seed that no other formula of the same run produces for
the positions a run reaches (epochs and stages are far below the multipliers).
"""

import torch


def epoch_seed(seed: int, epoch: int) -> int:
    """The global RNG seed of one training epoch, and the seed of that epoch's data order."""
    return (seed * 100003 + epoch) % 2**32


def batch_seed(seed: int, epoch: int, batch: int) -> int:
    """The global RNG seed of training batch `batch` of `epoch` (dropout's masks): a function of its position
    alone, so that a resumed run draws them as an uninterrupted one whatever else drew from the global RNG in
    between (a data loader's iterator takes its base seed from it when an epoch's loading starts)."""
    return ((1 << 63) + (seed << 40) + (epoch << 20) + batch) % 2**64


def prune_generator(seed: int, stage: int) -> torch.Generator:
    """The generator a criterion draws from when it prunes at `stage` (random scores, baselines)."""
    return torch.Generator().manual_seed(seed * 1000 + stage)


def reinit_seed(seed: int, stage: int) -> int:
    """The seed of a fresh initialisation at `stage` (lottery tickets' random re-initialisation control)."""
    return 1_000_003 * (seed + 1) + stage


def augment_generator(seed: int, batches_drawn: int) -> torch.Generator:
    """The generator of the augmentation of the next batch, after `batches_drawn` augmented batches."""
    return torch.Generator().manual_seed((seed << 32) + batches_drawn)


def update_seed(seed: int, stage: int, step: int) -> int:
    """The seed of a mask update during training (SET's regrowth) after `step` optimizer steps of `stage`."""
    return (seed << 40) + (stage << 32) + step
