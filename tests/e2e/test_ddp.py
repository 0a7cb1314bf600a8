"""Under DDP every rank prunes the same weights, though each rank scores its own batches (2 CPU processes, gloo);
a language-model run under DDP keeps its ranks in step and writes its perplexity curve once."""

import re
import socket
from contextlib import nullcontext
from unittest import mock

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
import pandas as pd
from omegaconf import OmegaConf
from torch import nn

from prunelab.config import build
from prunelab.pruning import ScoreContext, distributed
from prunelab.pruning.masks import full_masks
from prunelab import results as R
from prunelab.paths import RunPaths
from prunelab.training.export import load_model
from tests.helpers import LM, TINY, cli, compose_config, text_corpus, text_options

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


def stage_lines(log) -> list[str]:
    """The stage lines of a rank's log, without their time stamps."""
    return [re.sub(r"^\[.*?\]", "", line) for line in log.read_text().splitlines() if "stage " in line]


@pytest.mark.slow  # the command with 2 processes: ~40 s
def test_two_ranks_of_a_language_model_run_prune_alike_and_write_the_perplexity_curve_once(tmp_path):
    corpus = text_options(text_corpus(tmp_path / "corpus"), tmp_path / "cache")
    job, store = tmp_path / "job", tmp_path / "store"
    proc = cli(*TINY[:-3], *LM, *corpus, "dataset.limit=48", "pruning=taylor", "logger=none", "save_model=state",
               "export_onnx=false", "+trainer.strategy=ddp", "trainer.devices=2", f"hydra.run.dir={job}", cwd=tmp_path,
               store=store)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    first, second = stage_lines(job / "cli.log"), stage_lines(job / "train_ddp_process_1.log")
    assert len(first) == 3 and first == second, "ranks disagree on sparsity or perplexity"
    (run_dir,) = store.glob("runs/*")
    rows = pd.read_csv(RunPaths(run_dir).results)
    assert rows[R.STAGE].tolist() == [0, 1, 2] and rows["task"].eq("language_modeling").all()
    assert rows[R.WEIGHT_SPARSITY].tolist() == pytest.approx([0.0, 0.5, 0.8], abs=1e-3)
    pd.testing.assert_frame_equal(pd.read_csv(job / "results.csv"), rows)
    model = load_model(RunPaths(run_dir).model_state)
    linears = [m.weight for name, m in model.named_modules() if ".layers." in name and isinstance(m, nn.Linear)]
    zeros = sum(int((w == 0).sum()) for w in linears) / sum(w.numel() for w in linears)
    assert zeros == pytest.approx(0.8, abs=1e-3)  # the masks held to the end, on the weights rank 0 saved
