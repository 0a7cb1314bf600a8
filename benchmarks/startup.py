"""Start-up: from the command to the first training step of a run, phase by phase (interpreter, imports,
config, the checks that build the model, data loaded while W&B's offline init runs beside it, Trainer); and
how soon the command answers a bad config whose check needs no data: for each of `BAD_CONFIGS`, the median
seconds from the command's start to its error line with the schema cache cold (the first command after an
install) and warm (any later one), as a ratio to the 3 s it should take at most (`!`: over it); beside them
the time a fresh interpreter takes to import torch alone, and Lightning with torchvision.

    python benchmarks/startup.py [--repeats 5] [--answers 5] [--answers-only]

Each repetition is a fresh interpreter (imports are only cold once per process). Run it on an idle machine
(the load average is printed): imports are CPU-bound, and their time doubles on a busy one.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import env, median

PROBE = r"""
import json, sys, time, tempfile
from pathlib import Path
t = {"interpreter": time.perf_counter() - float(sys.argv[1])}
s = time.perf_counter()
import pytorch_lightning as pl
from prunelab.config import build
from prunelab.runs.run import preflight, start
from prunelab.runs.spec import from_config
from prunelab.training.callback import PruningCallback
t["imports"] = time.perf_counter() - s
sys.path.insert(0, sys.argv[2])
from common import config
s = time.perf_counter(); cfg = config("logger=wandb", "trainer.enable_progress_bar=false"); t["config"] = time.perf_counter() - s
out = tempfile.mkdtemp()
s = time.perf_counter()
spec = from_config(cfg, out).at(out)
parts = preflight(spec)
t["checks, model"] = time.perf_counter() - s
s = time.perf_counter()
logger = start(spec, parts)
dm, module, callback = parts.datamodule, parts.module, PruningCallback(parts.engine)
t["data | W&B init"] = time.perf_counter() - s

class FirstStep(pl.Callback):
    def on_train_batch_start(self, *a):
        raise KeyboardInterrupt

s = time.perf_counter()
trainer = build(cfg.trainer, max_epochs=1, logger=logger, callbacks=[callback, FirstStep()], default_root_dir=out)
try:
    trainer.fit(module, datamodule=dm)
except (KeyboardInterrupt, SystemExit):
    pass
t["Trainer to first step"] = time.perf_counter() - s
print(json.dumps(t))
logger.experiment.finish()
"""


# Bad settings whose checks need no data, each with the setting its error line names.
BAD_CONFIGS = {
    "schedule.targets=[1.5]": "schedule.targets",
    "optimizer.lr=-0.1": "optimizer.lr",
    "pruning.scope=bogus": "pruning.scope",
    "trainer.precision=float7": "trainer.precision",
    "dataset.batch_size=0": "dataset.batch_size",
}
ANSWER_WITHIN = 3.0  # seconds


def answer_seconds(override: str, folder: Path, cache: Path) -> float:
    """Wall seconds from the start of `python -m prunelab <override>` to its error line, with the user cache in
    `cache`; fails unless the line names the setting of `BAD_CONFIGS` and the command exits 2."""
    cmd = [sys.executable, "-m", "prunelab", override, f"hydra.run.dir={folder / 'job'}",
           f"store_dir={folder / 'store'}"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env(WANDB_MODE="offline", XDG_CACHE_HOME=str(cache)))
    seconds, lines = None, []
    for line in proc.stderr:
        lines.append(line)
        if seconds is None and line.startswith(f"prunelab: error: {BAD_CONFIGS[override]}: "):
            seconds = time.perf_counter() - start
    if proc.wait() != 2 or seconds is None:
        sys.exit("".join(lines)[-3000:])
    return seconds


def cold_seconds(override: str, folder: Path) -> float:
    """`answer_seconds` with an empty schema cache: the first command after an install (or a code change)."""
    with tempfile.TemporaryDirectory(dir=folder) as cache:
        return answer_seconds(override, folder, Path(cache))


def import_seconds(modules: str) -> float:
    """Wall seconds of a fresh interpreter that imports `modules`, then exits."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {modules}"], check=True, env=env())
    return time.perf_counter() - start


def phases(repeats: int) -> None:
    """Print the median of each start-up phase of the default run over `repeats` fresh processes."""
    runs = []
    for _ in range(repeats):
        proc = subprocess.run([sys.executable, "-c", PROBE, str(time.perf_counter()), str(Path(__file__).parent)],
                              capture_output=True, text=True, env=env(WANDB_MODE="offline", WANDB_SILENT="true"))
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if not line:
            sys.exit(proc.stderr[-3000:])
        runs.append(json.loads(line[-1]))
    print(f"start-up of the default run, median of {repeats} fresh processes")
    total = 0.0
    for phase in runs[0]:
        m = median([r[phase] for r in runs])
        total += m
        print(f"{phase:24} {m:7.2f} s")
    print(f"{'total':24} {total:7.2f} s")


def answers(repeats: int) -> None:
    """Print how soon each of `BAD_CONFIGS` is answered (median of `repeats` commands) with the schema cache cold
    and warm, against `ANSWER_WITHIN`, and the import floors."""
    print(f"a bad config answered in (median of {repeats} fresh interpreters, from the command's start to its error"
          f" line; load average {load()} on {os.cpu_count()} cores)")
    print(f"  {'':28} {'cold cache':>16} {'warm cache':>16}")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        warm = folder / "cache"
        answer_seconds("dataset.batch_size=0", folder, warm)  # reads every node's schema into the cache
        for override in BAD_CONFIGS:
            cold = median([cold_seconds(override, folder) for _ in range(repeats)])
            hot = median([answer_seconds(override, folder, warm) for _ in range(repeats)])
            print(f"  {override:28} {verdict(cold):>16} {verdict(hot):>16}")
    for modules in ("torch", "pytorch_lightning, torchvision"):
        print(f"importing {modules} alone takes {median([import_seconds(modules) for _ in range(repeats)]):.2f} s")
    print(f"load average at the end {load()}")


def verdict(seconds: float) -> str:
    """`seconds` and its ratio to `ANSWER_WITHIN`, marked when over it."""
    return f"{seconds:5.2f} s {seconds / ANSWER_WITHIN:4.2f}x{'!' if seconds >= ANSWER_WITHIN else ' '}"


def load() -> str:
    return "/".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per start-up phase")
    parser.add_argument("--answers", type=int, default=5, help="commands per bad config and cache state")
    parser.add_argument("--answers-only", action="store_true", help="time the bad configs only")
    args = parser.parse_args()
    if not args.answers_only:
        phases(args.repeats)
    answers(args.answers)


if __name__ == "__main__":
    main()
