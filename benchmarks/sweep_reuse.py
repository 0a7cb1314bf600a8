"""Wall time of a 4-method sweep with and without dense-model reuse (`cache=true|false`).

    python benchmarks/sweep_reuse.py [--repeats 3] [--pretrain 15] [--finetune 2] [--targets 0.5,0.8,0.9] [override ...]

Each repetition runs `prunelab -m pruning=magnitude,random pruning.scope=global,layer` on digits
(4 runs, one after another) into a fresh store, once with reuse and once without, and prints the
medians, their ratio, and the ratio the epoch counts predict: (P + K*S) / (K*(P + S)) for K runs of
P dense and S pruning epochs. Trailing overrides go to every run, e.g. the cheaper fixed costs
`metrics.latency_stages=final save_model=state`.
"""

import argparse
import tempfile

from common import (
    ROOT,
    add_schedule_arguments,
    median,
    prunelab_seconds,
    schedule_overrides,
)

METHODS = ["pruning=magnitude,random", "pruning.scope=global,layer"]
K = 4


def sweep(cache: bool, args: argparse.Namespace) -> float:
    """Seconds for one 4-run sweep into a fresh store."""
    with tempfile.TemporaryDirectory() as tmp:
        return prunelab_seconds(["-m", *METHODS, f"cache={str(cache).lower()}", f"store_dir={tmp}/store",
                                 f"hydra.sweep.dir={tmp}/sweep", "logger=none", "trainer.enable_progress_bar=false",
                                 *schedule_overrides(args), *args.overrides],
                                cwd=ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    add_schedule_arguments(parser)
    parser.add_argument("overrides", nargs="*", help="prunelab settings for every run")
    args = parser.parse_args()
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.repeats):
        for cache in (True, False):  # alternate, so drifting machine load hits both alike
            times[cache].append(sweep(cache, args))
            print(f"  cache={str(cache).lower()}: {times[cache][-1]:.1f} s", flush=True)
    stages = len(args.targets.split(",")) * args.finetune
    predicted = (args.pretrain + K * stages) / (K * (args.pretrain + stages))
    reuse, scratch = median(times[True]), median(times[False])
    print(f"{K}-method sweep on digits, {args.pretrain} dense + {stages} pruning epochs per run, "
          f"median of {args.repeats}{', ' + ' '.join(args.overrides) if args.overrides else ''}:")
    print(f"  with dense reuse    {reuse:8.1f} s")
    print(f"  without             {scratch:8.1f} s")
    print(f"  ratio {reuse / scratch:.2f} (epoch count predicts {predicted:.2f})")


if __name__ == "__main__":
    main()
