"""What structural pruning of a language model buys on the CPU: tokens/s of a dense LLaMA and of its width- and
depth-pruned copies at the same parameter fractions, for prefill (batch 1 and 8) and for generating 64
tokens (batch 1, greedy, with the key-value cache), beside their decoder-layer parameters.

    python benchmarks/lm_speed.py [--repeats 5] [--hidden 512] [--layers 8] [--heads 8] [--kv-heads 8]
                                  [--seq-len 128] [--new 64] [--targets 0.2,0.35] [--threads 2]

The pruned copies are made by prunelab's pruners (width: uniform L2, every layer the same widths; depth:
Block Influence on random windows); speed depends on the sizes left, not on which units went. Each
measurement is the median over `--repeats` interleaved rounds after one untimed warm-up round; ratios are
to the dense model. Run it on an idle machine.
"""

import argparse
import copy

import torch
import torch.nn.functional as F

from common import median, threads, timed


def dense_model(args: argparse.Namespace):
    from prunelab.models import causal_lm

    torch.manual_seed(0)
    return causal_lm(config={"model_type": "llama", "vocab_size": args.vocab, "hidden_size": args.hidden,
                             "intermediate_size": args.hidden * 11 // 4, "num_hidden_layers": args.layers,
                             "num_attention_heads": args.heads, "num_key_value_heads": args.kv_heads,
                             "max_position_embeddings": args.seq_len + args.new}).eval()


def pruned(dense, method: str, target: float, windows: torch.Tensor):
    """A copy of `dense` with a fraction `target` of its decoder-layer parameters removed by `method`."""
    from prunelab.pruning.calibration import Calibration
    from prunelab.pruning.criteria import ScoreContext
    from prunelab.pruning.depth import DepthPruner
    from prunelab.pruning.width import WidthPruner

    model = copy.deepcopy(dense)
    pruner = WidthPruner("l2") if method == "width" else DepthPruner("block_influence", Calibration(len(windows), 4))
    ctx = ScoreContext(batches=lambda: iter(()), loss=F.cross_entropy, generator=torch.Generator().manual_seed(0),
                       calibration=lambda n, seed: windows[:n])
    pruner.parameters(model)
    pruner.prune(model, {}, target, ctx)
    return model


def layer_parameters(model) -> int:
    from prunelab.models.decoder import decoder

    return sum(p.numel() for p in decoder(model).layers.parameters())


@torch.no_grad()
def prefill(model, ids: torch.Tensor) -> None:
    model(ids)


@torch.no_grad()
def generate(model, ids: torch.Tensor, new: int) -> None:
    model.lm.generate(ids, max_new_tokens=new, min_new_tokens=new, do_sample=False, use_cache=True,
                      pad_token_id=0, eos_token_id=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--kv-heads", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--new", type=int, default=64)
    parser.add_argument("--targets", default="0.2,0.35")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    threads(args.threads)
    g = torch.Generator().manual_seed(1)
    windows = torch.randint(0, args.vocab, (8, args.seq_len), generator=g)
    dense = dense_model(args)
    models = {"dense": dense}
    for target in (float(t) for t in args.targets.split(",")):
        for method in ("width", "depth"):
            models[f"{method} {target:.0%}"] = pruned(dense, method, target, windows)
    work = {"prefill b1": lambda m: prefill(m, windows[:1]), "prefill b8": lambda m: prefill(m, windows),
            f"generate {args.new}": lambda m: generate(m, windows[:1, :16], args.new)}
    tokens = {"prefill b1": args.seq_len, "prefill b8": 8 * args.seq_len, f"generate {args.new}": args.new}
    seconds = {(name, w): [] for name in models for w in work}
    for round_ in range(args.repeats + 1):  # round 0 warms up
        for name, model in models.items():
            for w, fn in work.items():
                t = timed(lambda: fn(model))
                if round_:
                    seconds[name, w].append(t)
    print(f"LLaMA hidden {args.hidden}, {args.layers} layers, {args.heads} heads ({args.kv_heads} key-value), "
          f"{args.threads} threads, median of {args.repeats}; tokens/s (ratio to dense)")
    print(f"{'model':<12} {'layer params':>14} " + " ".join(f"{w:>20}" for w in work))
    base = layer_parameters(dense)
    for name, model in models.items():
        n = layer_parameters(model)
        cells = []
        for w in work:
            rate = tokens[w] / median(seconds[name, w])
            cells.append(f"{rate:>10.0f} ({rate * median(seconds['dense', w]) / tokens[w]:.2f}x)")
        print(f"{name:<12} {n:>8} ({n / base:.2f}) " + " ".join(f"{c:>20}" for c in cells))


if __name__ == "__main__":
    main()
