"""Wanda and SparseGPT on a LLaMA: prunelab's block-sequential pruners against plain ports of the papers' code
(benchmarks/llm_ports.py) on the same model and calibration windows, and the peak memory of both as the number
of decoder layers doubles.

    python benchmarks/lm_pruning.py [--repeats 3] [--hidden 256] [--layers 4] [--samples 64] [--seq-len 128]
                                    [--threads 1] [--parts time,memory]

Time: seconds per decoder layer (the whole model pruned once, divided by its layers), median over interleaved
repetitions, and the fraction of weights whose mask agrees with the port's. Memory: each pruning in a fresh
process; the peak resident memory (VmHWM, reset once the model, the calibration windows and the dense masks
exist) above what was resident then, at `--layers` and twice as many, with the ratio; glibc set to return freed
blocks of 64 KiB and more at once (`MALLOC`), so that resident memory follows the live tensors. prunelab's peak
includes the masks it returns (one bool per weight), which the ports do not make; printed beside it.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from common import median, threads
from llm_ports import prune_sparsegpt, prune_wanda

# glibc serves allocations of 64 KiB and more from mmap and unmaps them when freed, so that resident memory
# follows the live tensors (its default threshold grows with freed blocks, and the heap keeps what it freed)
MALLOC = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
CASES = {"wanda 50%": ("wanda", "unstructured", 0, 0), "sparsegpt 50%": ("sparsegpt", "unstructured", 0, 0),
         "sparsegpt 2:4": ("sparsegpt", "2:4", 2, 4)}


def model(hidden: int, layers: int, vocab: int = 2048, length: int = 128):
    from prunelab.models import causal_lm

    torch.manual_seed(0)
    return causal_lm(config={"model_type": "llama", "vocab_size": vocab, "hidden_size": hidden,
                             "intermediate_size": hidden * 11 // 4, "num_hidden_layers": layers,
                             "num_attention_heads": 4, "max_position_embeddings": length}).eval()


def windows(samples: int, length: int, vocab: int = 2048) -> torch.Tensor:
    return torch.randint(0, vocab, (samples, length), generator=torch.Generator().manual_seed(1))


def ours(case: str, lm, data: torch.Tensor):
    """The prunelab pruner of `case`, its dense masks, and a call that prunes `lm` on `data` at 50%."""
    from torch import nn

    from prunelab.pruning.calibration import Calibration
    from prunelab.pruning.criteria import ScoreContext
    from prunelab.pruning.sparsegpt import SparseGPT
    from prunelab.pruning.wanda import WandaPruner

    method, pattern, _, _ = CASES[case]
    calibration = Calibration(num_samples=len(data), batch_size=8)
    pruner = WandaPruner(calibration, pattern=pattern) if method == "wanda" else SparseGPT(calibration, pattern=pattern)
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in pruner.parameters(lm).items()}
    ctx = ScoreContext(batches=lambda: iter(()), loss=nn.functional.cross_entropy, generator=torch.Generator(),
                       calibration=lambda n, seed: data[:n])
    return masks, lambda: pruner.prune(lm, masks, 0.5, ctx)


def port(case: str, lm, data: torch.Tensor):
    from prunelab.models.decoder import decoder

    method, _, n, m = CASES[case]
    prune = prune_wanda if method == "wanda" else prune_sparsegpt
    return lambda: prune(lm, decoder(lm).layers, data, 0.5, n, m)


def agreement(a, b) -> float:
    """The fraction of decoder weights that are zero in both or nonzero in both."""
    from prunelab.pruning.masks import prunable_parameters

    pa, pb = prunable_parameters(a, (), True), prunable_parameters(b, (), True)
    same = sum(int(((pa[k] == 0) == (pb[k] == 0)).sum()) for k in pa)
    return same / sum(p.numel() for p in pa.values())


def time_cases(args) -> None:
    print(f"{'case':14} {'port s/layer':>13} {'prunelab s/layer':>17} {'ratio':>6} {'same mask':>10}")
    data = windows(args.samples, args.seq_len)
    for case in CASES:
        theirs, mine, same = [], [], []
        for _ in range(args.repeats):
            a, b = model(args.hidden, args.layers), model(args.hidden, args.layers)
            _, run = ours(case, a, data)
            mine.append(_seconds(run) / args.layers)
            theirs.append(_seconds(port(case, b, data)) / args.layers)
            same.append(agreement(a, b))
        print(f"{case:14} {median(theirs):13.3f} {median(mine):17.3f} {median(mine) / median(theirs):6.2f}x "
              f"{min(same):10.4f}")


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def peak(case: str, tool: str, args) -> tuple[float, float]:
    """(MiB of peak resident memory above the start, MiB of the masks returned) of one pruning, in this process."""
    lm, data = model(args.hidden, args.layers), windows(args.samples, args.seq_len)
    if tool == "prunelab":
        masks, run = ours(case, lm, data)
        mask_mib = sum(m.numel() for m in masks.values()) / 2**20
    else:
        run, mask_mib = port(case, lm, data), 0.0
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the resident memory now
    start = _status("VmRSS")
    run()
    return (_status("VmHWM") - start) / 1024, mask_mib


def _status(key: str) -> int:
    """A kB figure of /proc/self/status."""
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(key + ":"))
    return int(line.split()[1])


def memory(args) -> None:
    print(f"peak memory above the start, MiB, {args.layers} -> {2 * args.layers} decoder layers")
    print(f"{'case':14} {'tool':9} {'peak':>14} {'ratio':>6} {'of it masks':>12}")
    for case in CASES:
        for tool in ("port", "prunelab"):
            out = [subprocess.run([sys.executable, __file__, "--child", case, tool, "--layers", str(layers),
                                   *_shared(args)], capture_output=True, text=True, check=True,
                                  env={**os.environ, **MALLOC}).stdout.split()
                   for layers in (args.layers, 2 * args.layers)]
            (p1, m1), (p2, m2) = [(float(o[-2]), float(o[-1])) for o in out]
            print(f"{case:14} {tool:9} {p1:6.1f} -> {p2:5.1f} {p2 / p1:6.2f}x {m1:5.1f} -> {m2:4.1f}")


def _shared(args) -> list[str]:
    return ["--hidden", str(args.hidden), "--samples", str(args.samples), "--seq-len", str(args.seq_len),
            "--threads", str(args.threads)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parts", default="time,memory", help="time, memory or both")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    threads(args.threads)
    if args.child:
        print(*peak(*args.child, args))
        return
    print(f"LLaMA hidden {args.hidden}, {args.layers} decoder layers, {args.samples} calibration windows of "
          f"{args.seq_len} tokens, {args.threads} thread(s), median of {args.repeats}")
    if "time" in args.parts:
        time_cases(args)
    if "memory" in args.parts:
        memory(args)


if __name__ == "__main__":
    main()
