"""Structural pruning: real channel removal on many architectures, masks that match it, targets, saving."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from prunelab.models import DigitsCNN
from prunelab.paths import RunPaths
from prunelab.training.export import load_model
from tests.helpers import ROOT, TINY, compose_config, run, structural_options, widths


def assert_saved_model_round_trips(model, out_dir, shape):
    x = torch.randn(5, *shape)
    expected = model.eval()(x)
    program = torch.export.load(RunPaths(out_dir).model_program).module()
    torch.testing.assert_close(program(x), expected)
    torch.testing.assert_close(load_model(RunPaths(out_dir).model_state).eval()(x), expected)


@pytest.mark.parametrize("method", structural_options())
def test_every_structural_method_runs_end_to_end_on_digits(method, tmp_path):
    out = run(compose_config(*TINY, f"pruning={method}", "save_model=true"), tmp_path)
    df = pd.read_csv(tmp_path / "results.csv")
    assert df["stage"].tolist() == [0, 1, 2] and df["target_sparsity"].tolist() == [0.0, 0.5, 0.8]
    assert df["params"].is_monotonic_decreasing and df["macs"].is_monotonic_decreasing
    assert (df["params"] == df["nonzero_params"]).all() and (df["macs"] == df["nonzero_macs"]).all()
    assert df["param_sparsity"].tolist() == pytest.approx((1 - df["nonzero_params"] / df["params"][0]).tolist())
    convs = pd.read_csv(tmp_path / "layer_sparsity.csv")
    prunable = convs[~convs["layer"].isin([convs["layer"].iloc[-1]])]  # the output layer is not prunable
    dense = prunable[prunable["stage"] == 0]["params"].sum()
    kept = prunable.groupby("stage")["nonzero_params"].sum()
    assert df["weight_sparsity"].tolist() == pytest.approx((1 - kept / dense).tolist())
    assert df["theoretical_speedup"].iloc[-1] == pytest.approx(df["macs"][0] / df["macs"].iloc[-1])
    assert (df["latency_ms"] > 0).all() and df["val_acc"].between(0, 1).all()
    optimized = {id(p) for group in out.module.trainer.optimizers[0].param_groups for p in group["params"]}
    assert optimized == {id(p) for p in out.module.model.parameters()}, "the optimizer must hold the new parameters"
    layers = pd.read_csv(tmp_path / "layer_sparsity.csv")
    assert len(layers) == 3 * 5 and layers.groupby("stage")["params"].sum().is_monotonic_decreasing
    assert_saved_model_round_trips(out.module.model, tmp_path, (1, 8, 8))
    fresh = DigitsCNN([1, 8, 8], 10)
    fresh.load_state_dict(torch.load(tmp_path / "dense.pt", weights_only=True))


def test_oneshot_removal_starts_every_stage_from_the_dense_model(tmp_path):
    cfg = compose_config(*TINY, "pruning=l1_filter", "schedule=oneshot", "pruning.scope=global",
                         "pruning.round_to=4", "pruning.max_layer_ratio=0.7", "save_model=true")
    out = run(cfg, tmp_path)
    df = out.results
    assert df["param_sparsity"].iloc[-1] > df["param_sparsity"].iloc[1] > 0.4
    assert all(w % 4 == 0 for w in widths(out.module.model)[:-1])
    assert all(w >= 0.3 * d for w, d in zip(widths(out.module.model), [32, 64, 64, 128, 10]))
    assert_saved_model_round_trips(out.module.model, tmp_path, (1, 8, 8))


def test_masked_channels_stay_zero_through_fine_tuning(tmp_path):
    out = run(compose_config(*TINY, "pruning=l1_filter", "pruning.remove=false", "save_model=true"), tmp_path)
    df = out.results
    assert (df["params"] == df["params"][0]).all() and (df["macs"] == df["macs"][0]).all()
    assert df["nonzero_macs"].is_monotonic_decreasing and df["theoretical_speedup"].iloc[-1] > 10
    weight = out.module.model[0].weight.flatten(1)
    assert (weight == 0).all(1).sum() == 32 - int(32 * 0.2) and (weight != 0).any(1).sum() == int(32 * 0.2)
    assert_saved_model_round_trips(out.module.model, tmp_path, (1, 8, 8))


@pytest.mark.slow
def test_two_ddp_ranks_remove_the_same_channels(tmp_path):
    path = os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "prunelab", *TINY, "save_model=true", "pruning=taylor_channel",
           "+trainer.strategy=ddp", "trainer.devices=2", f"hydra.run.dir={tmp_path}"]
    subprocess.run(cmd, env={**os.environ, "PYTHONPATH": path}, cwd=ROOT, check=True, capture_output=True, timeout=900)
    stages = [[re.sub(r"^\[.*?\]", "", line) for line in (tmp_path / log).read_text().splitlines() if "stage " in line]
              for log in ("cli.log", "train_ddp_process_1.log")]
    assert len(stages[0]) == 3 and stages[0] == stages[1], "ranks disagree on sparsity or accuracy"
    df = pd.read_csv(tmp_path / "results.csv")
    run_dir = Path(json.loads((tmp_path / "status.json").read_text())["run_dir"])
    assert df["macs"].is_monotonic_decreasing and RunPaths(run_dir).model_program.is_file()
