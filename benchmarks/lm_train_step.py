"""Language-model training step: prunelab's (the LM LightningModule in Lightning's Trainer with the pruning
callback, dense and 90%-sparse with its masks held) against a plain PyTorch loop (forward, cross-entropy,
backward, AdamW step) over the same small LLaMA, the same batches and the same optimizer.

    python benchmarks/lm_train_step.py [--repeats 3] [--epochs 2] [--windows 256] [--vocab 2048] [--seq-len 128]
                                       [--batch 32] [--threads 1]

The text is the shared corpus of the Python documentation, read from $PRUNELAB_DATA/python-docs (else
../shared/data); `--windows` training windows of `--seq-len` tokens make an epoch. Prints medians of seconds per
step over interleaved repetitions (`finetune_overhead.print_epochs`) and the ratios.
"""

import argparse
import os

from common import config, threads
from finetune_overhead import SHARED_DATA, plain_epochs, print_epochs


def overrides(args: argparse.Namespace) -> list[str]:
    """conf/model/llama_small.yaml on `args`' windows of the shared text, AdamW, one 90% target."""
    data = os.environ.get("PRUNELAB_DATA", SHARED_DATA)
    return ["model=llama_small", "dataset=text", f"dataset.data_dir={data}/python-docs",
            f"dataset.vocab_size={args.vocab}", f"dataset.seq_len={args.seq_len}", f"dataset.batch_size={args.batch}",
            f"dataset.limit={args.windows}", "optimizer=adamw", "logger=none", "save_model=false",
            "export_onnx=false", f"schedule.pretrain_epochs={args.epochs}",
            f"schedule.finetune_epochs={args.epochs + 1}", "schedule.targets=[0.9]"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--windows", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=2048)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    threads(args.threads)
    steps = -(-args.windows // args.batch)  # an epoch's batches: the last one may be short
    print(f"vocabulary {args.vocab}, {args.batch} x {args.seq_len} tokens a step, {steps} steps an "
          f"epoch, {args.threads} thread(s), median of {args.repeats}")
    print(f"{'model':12} {'plain s/step':>14} {'prunelab dense':>15} {'ratio':>6} {'90% sparse':>11} {'ratio':>6}")
    print_epochs("llama_small", 12, config(*overrides(args)), args.epochs, args.repeats, plain_epochs, steps)


if __name__ == "__main__":
    main()
