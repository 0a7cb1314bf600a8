"""Wall time of the default comparison: one method of each family (random, magnitude, taylor,
l1_filter) on digits with the default schedule (5 sparsity points), as the README suggests it.

    python benchmarks/default_sweep.py [--repeats 5]

Each repetition runs `prunelab -m pruning=random,magnitude,taylor,l1_filter` from the command line,
W&B offline (the default logger), into a fresh store: one dense training (shared), four prune and
fine-tune schedules, the comparison figure and tables and the W&B summary run. Prints the median.
"""

import argparse
import tempfile
from pathlib import Path

from common import median, prunelab_seconds

COMMAND = ["-m", "pruning=random,magnitude,taylor,l1_filter"]


def sweep() -> float:
    """Seconds for the whole command, interpreter start to exit, in a fresh folder."""
    with tempfile.TemporaryDirectory() as tmp:
        return prunelab_seconds([*COMMAND, f"store_dir={tmp}/store", f"hydra.sweep.dir={tmp}/sweep",
                                 "trainer.enable_progress_bar=false"], cwd=Path(tmp),
                                WANDB_MODE="offline", WANDB_SILENT="true")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    times = []
    for _ in range(args.repeats):
        times.append(sweep())
        print(f"  {times[-1]:.1f} s", flush=True)
    print(f"prunelab {' '.join(COMMAND)} (digits, 5 targets), median of {args.repeats}: {median(times):.1f} s "
          f"(bar: 180 s, {median(times) / 180:.2f} of it)")


if __name__ == "__main__":
    main()
