"""Parallel sweeps: 2 default runs as a 2-job joblib sweep against the same sweep run one job after another,
and a single run with `threads=auto` (torch's default when alone) against `threads=1`.

    python benchmarks/parallel_sweep.py [--repeats 5] [--pretrain 15] [--finetune 2] [--targets 0.5,0.8,0.9]

Each sweep is `prunelab -m seed=0,1` from the command line, W&B offline, into a fresh store; the
parallel one adds `hydra/launcher=joblib hydra.launcher.n_jobs=2`, so with `threads=auto` each job
takes half the cores. Prints the medians and the ratios parallel / sequential and auto / 1 thread.
"""

import argparse
import tempfile
from pathlib import Path

from common import add_schedule_arguments, median, prunelab_seconds, schedule_overrides

PARALLEL = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]


def seconds(args: argparse.Namespace, *overrides: str) -> float:
    """Wall seconds of one prunelab command with `overrides` in a fresh folder."""
    with tempfile.TemporaryDirectory() as tmp:
        return prunelab_seconds([*overrides, f"store_dir={tmp}/store", f"hydra.sweep.dir={tmp}/sweep",
                                 f"hydra.run.dir={tmp}/run", "trainer.enable_progress_bar=false",
                                 *schedule_overrides(args)], cwd=Path(tmp),
                                WANDB_MODE="offline", WANDB_SILENT="true")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    add_schedule_arguments(parser)
    args = parser.parse_args()
    cases = {
        "2-job sweep, sequential": ["-m", "seed=0,1"],
        "2-job sweep, joblib n_jobs=2": ["-m", "seed=0,1", *PARALLEL],
        "single run, threads=auto": [],
        "single run, threads=1": ["threads=1"],
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeats):  # interleaved, so drifting machine load hits every case alike
        for name, overrides in cases.items():
            times[name].append(seconds(args, *overrides))
            print(f"  {name}: {times[name][-1]:.1f} s", flush=True)
    m = {name: median(t) for name, t in times.items()}
    print(f"default runs on digits, {args.pretrain} dense epochs, targets [{args.targets}] x {args.finetune} "
          f"fine-tune epochs, W&B offline, median of {args.repeats}:")
    for name, value in m.items():
        print(f"  {name:30} {value:8.1f} s")
    parallel = m["2-job sweep, joblib n_jobs=2"] / m["2-job sweep, sequential"]
    single = m["single run, threads=auto"] / m["single run, threads=1"]
    print(f"  parallel / sequential ratio {parallel:.2f} (bar <= 0.60); single run auto / 1 thread {single:.2f}")


if __name__ == "__main__":
    main()
