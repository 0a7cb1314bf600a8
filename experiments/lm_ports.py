"""prunelab's Wanda and SparseGPT against plain ports of the papers' code (benchmarks/llm_ports.py) on the dense
LLaMA of `+experiment=lm_oneshot`: the same dense weights, the same calibration windows, test perplexity of both
right after pruning, and the fraction of weights whose mask agrees. A check that does not depend on the model's
scale: the two must give the same perplexity.

    python -m experiments.lm_ports [--seeds 0 1] [--cases wanda:0.5 wanda:2:4 sparsegpt:0.5 sparsegpt:2:4]

The corpus is read from $PRUNELAB_DATA/python-docs, else ../shared/data (as the preset); run from the repository's folder.
"""

import argparse
import copy
import time
from importlib import resources

import torch
from hydra import compose, initialize_config_dir
from torch import nn

from benchmarks.llm_ports import prune_sparsegpt, prune_wanda
from prunelab.config import build
from prunelab.models.decoder import decoder
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.masks import prunable_parameters
from prunelab.runs.run import load_dense
from prunelab.training.lm_module import LanguageModelModule


def setting(method: str, pattern: str):
    """The preset's config for `method` at `pattern` ("unstructured" or "n:m")."""
    with initialize_config_dir(str(resources.files("prunelab.conf")), version_base="1.3"):
        return compose("config", overrides=["+experiment=lm_oneshot", f"pruning={method}", "logger=none",
                                            f'pruning.pattern="{pattern}"'])


def perplexity(model: nn.Module, datamodule) -> float:
    module = LanguageModelModule(model, None, None)
    return module.evaluate(datamodule.test_dataloader())["ppl"]


def agreement(a: nn.Module, b: nn.Module) -> float:
    pa, pb = prunable_parameters(a, (), True), prunable_parameters(b, (), True)
    return sum(int(((pa[k] == 0) == (pb[k] == 0)).sum()) for k in pa) / sum(p.numel() for p in pa.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--cases", nargs="+", default=["wanda:0.5", "wanda:2:4", "sparsegpt:0.5", "sparsegpt:2:4"])
    args = parser.parse_args()
    cfg = setting("wanda", "unstructured")
    dense = build(cfg.model)
    load_dense(dense, cfg.dense_checkpoint)
    datamodule = build(cfg.dataset)
    datamodule.setup("fit")
    print(f"dense test perplexity {perplexity(dense, datamodule):.3f} ({cfg.dense_checkpoint})")
    print(f"{'case':16} {'seed':>4} {'prunelab':>9} {'port':>9} {'rel. diff':>10} {'same mask':>10} "
          f"{'prunelab s':>11} {'port s':>7}")
    for case in args.cases:
        method, _, rest = case.partition(":")
        pattern = "unstructured" if ":" not in rest else rest
        n, m = (int(v) for v in rest.split(":")) if ":" in rest else (0, 0)
        target = 0.5 if n else float(rest)
        for seed in args.seeds:
            pruner = build(setting(method, pattern).pruning)
            pruner.calibration.seed = seed
            windows = datamodule.calibration_samples(pruner.calibration.num_samples, seed)
            ours, theirs = copy.deepcopy(dense), copy.deepcopy(dense)
            masks = {k: torch.ones_like(p, dtype=torch.bool) for k, p in pruner.parameters(ours).items()}
            ctx = ScoreContext(batches=lambda: iter(()), loss=nn.functional.cross_entropy,
                               generator=torch.Generator(), calibration=datamodule.calibration_samples)
            start = time.perf_counter()
            pruner.prune(ours, masks, target, ctx)
            mine = time.perf_counter() - start
            port = prune_wanda if method == "wanda" else prune_sparsegpt
            start = time.perf_counter()
            port(theirs, decoder(theirs).layers, windows, target, n, m)
            other = time.perf_counter() - start
            a, b = perplexity(ours, datamodule), perplexity(theirs, datamodule)
            print(f"{method + ' ' + rest:16} {seed:4} {a:9.3f} {b:9.3f} {(a - b) / b:+10.2%} "
                  f"{agreement(ours, theirs):10.4f} {mine:11.1f} {other:7.1f}", flush=True)


if __name__ == "__main__":
    main()
