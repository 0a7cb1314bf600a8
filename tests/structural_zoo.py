"""The structural sweep of torchvision's classification models: each model in its own process, with a timeout.

`python -m tests.structural_zoo [arch ...]` prints one JSON line per model; `--table FILE.jsonl` turns those
lines into the markdown table of docs/structural_zoo.md; `python -m tests.structural_zoo --one
ARCH` checks one model: random weights, `l1_group` (torch-pruning's group L1 norm, layer scope) at 50% of the channels,
then a finite forward pass of the right shape and MACs cut at least 2x.
"""

import json
import os
import subprocess
import sys
import time

import torch
import torch_pruning as tp
import torchvision
from torch import nn

from prunelab.errors import ConfigError
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.structural import StructuralPruner
from prunelab.training.meter import layer_costs

# Smallest first, so that the giants come last.
ZOO = sorted(torchvision.models.list_models(module=torchvision.models),
             key=lambda arch: torchvision.models.get_model_weights(arch).DEFAULT.meta["num_params"])
SIZES = (64, 224)  # the first input size the dense model takes
TIMEOUT_S = 600


def _macs(model: nn.Module, x: torch.Tensor) -> int:
    return sum(c.macs for c in layer_costs(model, x[:1]).values())


def _input(model: nn.Module) -> torch.Tensor:
    for size in SIZES:
        x = torch.randn(2, 3, size, size)
        try:
            with torch.no_grad():
                model.eval()(x)
            return x
        except Exception:  # noqa: BLE001 - too small for this model: try the next size
            continue
    raise RuntimeError(f"no input size of {SIZES} fits")


def check(arch: str) -> dict:
    """Prune half the channels of `arch`; its outcome: pruned (with the MACs cut) or refused, and the seconds."""
    start = time.perf_counter()
    torch.manual_seed(0)
    model = torchvision.models.get_model(arch, weights=None, num_classes=10)
    pruner = StructuralPruner(tp.importance.GroupMagnitudeImportance(p=1))
    try:
        pruner.parameters(model)  # where a run refuses a model: before training
    except ConfigError as err:
        return {"arch": arch, "outcome": "refused", "why": err.problem, "fix": err.fix,
                "seconds": round(time.perf_counter() - start, 1)}
    x = _input(model)
    dense = _macs(model, x)
    data = [(x, torch.randint(0, 10, (2,)))]
    ctx = ScoreContext(batches=lambda: data, loss=nn.functional.cross_entropy, generator=torch.Generator())
    pruner.prune(model, {}, 0.5, ctx)
    with torch.no_grad():
        out = model.eval()(x)
    assert out.shape == (2, 10) and torch.isfinite(out).all(), f"output {tuple(out.shape)}"
    return {"arch": arch, "outcome": "pruned", "size": x.shape[-1], "macs_cut": round(dense / _macs(model, x), 2),
            "seconds": round(time.perf_counter() - start, 1)}


def sweep_one(arch: str, timeout: float = TIMEOUT_S) -> dict:
    """`check(arch)` in a child process: a crash, a raw error or a hang is a `failed` outcome, not the sweep's end."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "tests.structural_zoo", "--one", arch], capture_output=True,
                              text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"arch": arch, "outcome": "failed", "why": f"timed out after {timeout:.0f} s", "seconds": timeout}
    if proc.returncode == 0:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"arch": arch, "outcome": "failed", "why": last[:300], "seconds": round(time.perf_counter() - start, 1)}


def table(outcomes: dict[str, dict]) -> str:
    """A markdown row per model of `ZOO`: outcome, input size, MACs cut or why it is refused, seconds."""
    rows = ["| model | outcome | input | MACs cut | why | seconds |", "|---|---|---|---|---|---|"]
    for arch in ZOO:
        o = outcomes.get(arch, {"outcome": "not measured"})
        cut = f"{o['macs_cut']}x" if "macs_cut" in o else ""
        rows.append(f"| {arch} | {o['outcome']} | {o.get('size', '')} | {cut} | {o.get('why', '')} |"
                    f" {o.get('seconds', '')} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    if sys.argv[1:2] == ["--table"]:
        with open(sys.argv[2]) as lines:
            print(table({o["arch"]: o for o in map(json.loads, lines)}), end="")
    elif sys.argv[1:2] == ["--one"]:
        print(json.dumps(check(sys.argv[2])))
    else:
        for name in sys.argv[1:] or ZOO:
            print(json.dumps(sweep_one(name)), flush=True)
