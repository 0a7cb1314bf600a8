"""Under DDP every rank prunes the same weights, though each rank scores its own batches (2 CPU processes, gloo)."""

import socket
from contextlib import nullcontext
from unittest import mock

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from prunelab.config import build
from prunelab.pruning import ScoreContext, distributed
from prunelab.pruning.masks import full_masks
from tests.helpers import compose_config

METHODS = ["random", "magnitude", "taylor", "snip", "grasp", "synflow"]
DATA_DRIVEN = ["taylor", "snip", "grasp"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_masks(rank: int, world: int, port: int, nodes: dict, out: str) -> None:
    """On one rank: the same initial weights, this rank's own data, then each pruner as the callback calls it."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        g = torch.Generator().manual_seed(100 + rank)
        data = [(torch.randn(16, 1, 8, 8, generator=g), torch.randint(0, 10, (16,), generator=g)) for _ in range(2)]
        masks = {}
        for reduced in (True, False):
            no_reduction = mock.patch.object(distributed, "all_reduce_sum", lambda tensors: None)
            with nullcontext() if reduced else no_reduction:
                for name, node in nodes.items():
                    torch.manual_seed(0)
                    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 32), nn.ReLU(),
                                        nn.Linear(32, 10))
                    pruner = build(node)
                    ctx = ScoreContext(batches=lambda: iter(data), loss=F.cross_entropy,
                                       generator=torch.Generator().manual_seed(1))  # seed * 1000 + stage: equal on every rank
                    masks[name, reduced] = pruner.prune(net, full_masks(pruner.parameters(net)), 0.5, ctx)
        torch.save(masks, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # a multirun or CLI subprocesses: the slow suite (pytest -m slow) runs it
def test_every_rank_prunes_the_same_weights(tmp_path):
    nodes = {m: OmegaConf.to_container(compose_config(f"pruning={m}").pruning, resolve=True) for m in METHODS}
    mp.spawn(rank_masks, args=(2, free_port(), nodes, str(tmp_path)), nprocs=2, join=True)
    first, second = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))

    def same(key):
        return all(torch.equal(first[key][n], second[key][n]) for n in first[key])

    assert all(same((m, True)) for m in METHODS), [m for m in METHODS if not same((m, True))]
    # the test can fail: without the reduction, ranks with different data prune different weights
    assert not any(same((m, False)) for m in DATA_DRIVEN), [m for m in DATA_DRIVEN if same((m, False))]
