"""Every benchmark script runs with its smallest settings and prints its result line (slow: minutes)."""

import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT

BENCHMARKS = {
    "data_throughput.py": (["--repeats", "1"], "ratio"),
    "default_sweep.py": (["--repeats", "1"], "median of 1"),
    "folder_cache.py": (["--repeats", "1", "--per-sample", "256"], "ratio"),
    "finetune_overhead.py": (["--repeats", "1", "--epochs", "1", "--case", "LeNet-300-100 / MNIST"], "LeNet-300-100"),
    "gpu_epoch.py": (["--repeats", "1", "--epochs", "1", "--models", "resnet20", "--device", "cpu", "--data",
                      "synthetic", "--samples", "256"], "resnet20"),
    "lm_pruning.py": (["--repeats", "1", "--hidden", "64", "--layers", "2", "--samples", "8", "--seq-len", "32"],
                      "sparsegpt 2:4"),
    "lm_speed.py": (["--repeats", "1", "--hidden", "64", "--layers", "4", "--heads", "4", "--kv-heads", "2", "--vocab",
                     "256", "--seq-len", "32", "--new", "8"], "depth 35%"),
    "lm_train_step.py": (["--repeats", "1", "--epochs", "1", "--windows", "16", "--vocab", "512", "--seq-len", "32",
                          "--batch", "8"], "llama_small "),
    "mask_computation.py": (["--repeats", "1"], "same mask: True"),
    "parallel_sweep.py": (["--repeats", "1", "--pretrain", "1", "--finetune", "1", "--targets", "0.5"],
                          "parallel / sequential ratio"),
    "run_costs.py": (["--repeats", "1"], "one training epoch"),
    "scoring_cost.py": (["--repeats", "1", "--batches", "1"], "synflow"),
    "startup.py": (["--repeats", "1", "--answers", "1"], "answered in"),
    "structural_latency.py": (["--repeats", "1", "--warmup", "0"], "mobilenet_v2"),
    "sweep_reuse.py": (["--repeats", "1", "--pretrain", "1", "--finetune", "1", "--targets", "0.5"], "ratio"),
}


SHARED = {"common.py", "llm_ports.py"}  # modules the scripts import


def test_every_benchmark_script_is_listed():
    assert sorted(BENCHMARKS) == sorted(p.name for p in (ROOT / "benchmarks").glob("*.py") if p.name not in SHARED)


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(BENCHMARKS))
def test_benchmark_runs_with_its_smallest_settings(script):
    args, expected = BENCHMARKS[script]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, f"benchmarks/{script}", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert expected in proc.stdout
