"""Start-up: from the command to the first training step of a run, phase by phase (interpreter, imports,
config, the checks that build the model, data loaded while W&B's offline init runs beside it, Trainer); and
how soon the command answers a bad config whose check needs no data (`optimizer.lr=-0.1`), beside the time
a fresh interpreter takes to import Lightning and torchvision, which every check needs.

    python benchmarks/startup.py [--repeats 5]

Each repetition is a fresh interpreter (imports are only cold once per process).
"""

import argparse
import json
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


BAD_CONFIG = "optimizer.lr=-0.1"


def answer_seconds(folder: Path) -> float:
    """Wall seconds from the start of `python -m prunelab <BAD_CONFIG>` to its exit; fails unless it exits 2."""
    cmd = [sys.executable, "-m", "prunelab", BAD_CONFIG, f"hydra.run.dir={folder}"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, env=env(WANDB_MODE="offline"))
    seconds = time.perf_counter() - start
    if proc.returncode != 2:
        sys.exit(proc.stderr[-3000:])
    return seconds


def import_seconds() -> float:
    """Wall seconds of a fresh interpreter that imports Lightning and torchvision (and so torch), then exits: what
    every check needs (the config check imports each `_target_`)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import pytorch_lightning, torchvision"], check=True, env=env())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeats):
        proc = subprocess.run([sys.executable, "-c", PROBE, str(time.perf_counter()), str(Path(__file__).parent)],
                              capture_output=True, text=True, env=env(WANDB_MODE="offline", WANDB_SILENT="true"))
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if not line:
            sys.exit(proc.stderr[-3000:])
        runs.append(json.loads(line[-1]))
    print(f"start-up of the default run, median of {args.repeats} fresh processes")
    total = 0.0
    for phase in runs[0]:
        m = median([r[phase] for r in runs])
        total += m
        print(f"{phase:24} {m:7.2f} s")
    print(f"{'total':24} {total:7.2f} s")
    with tempfile.TemporaryDirectory() as folder:
        answers = [answer_seconds(Path(folder)) for _ in range(args.repeats)]
    imports = [import_seconds() for _ in range(args.repeats)]
    print(f"a bad config ({BAD_CONFIG}) answered in {median(answers):.2f} s (median of {args.repeats});"
          f" importing Lightning and torchvision alone takes {median(imports):.2f} s")


if __name__ == "__main__":
    main()
