"""Every pruning option runs end to end on digits; the methods' settings are checked before training."""

import json
from pathlib import Path

import pandas as pd
import pytest
from hydra._internal.utils import _locate
from omegaconf import OmegaConf

from prunelab.errors import ConfigError
from tests.helpers import CONF, TINY, cli, compose_config, options, prepare, run


def needs_gradual(method: str) -> bool:
    """Whether the option's pruner prunes only on a gradual schedule (tests/e2e/test_training_time.py runs it)."""
    return getattr(_locate(OmegaConf.load(CONF / "pruning" / f"{method}.yaml")["_target_"]), "needs_gradual", False)


def needs_causal_lm(method: str) -> bool:
    """Whether the option removes a causal LM's decoder layers or heads and channels (tests/e2e/test_lm_depth.py
    and test_lm_width.py run it)."""
    target = OmegaConf.load(CONF / "pruning" / f"{method}.yaml")["_target_"]
    return target.startswith(("prunelab.pruning.depth.", "prunelab.pruning.width."))


# Structural methods reach channel ratios, not exact weight counts: tests/e2e/test_structural.py runs them.
STEPWISE = [m for m in options("pruning") if not needs_gradual(m) and not needs_causal_lm(m)]
UNSTRUCTURED = [m for m in STEPWISE if "family: structural" not in (CONF / "pruning" / f"{m}.yaml").read_text()]


@pytest.mark.parametrize("method", UNSTRUCTURED)
def test_every_unstructured_option_reaches_its_targets_end_to_end(method, tmp_path):
    out = run(compose_config(*TINY, f"pruning={method}"), tmp_path)
    df = pd.read_csv(tmp_path / "results.csv")
    assert df["stage"].tolist() == [0, 1, 2] and (df["method"] == method).all()
    assert df["weight_sparsity"].iloc[1:].tolist() == pytest.approx([0.5, 0.8], abs=1e-3)
    assert df["test_acc"].between(0, 1).all()
    assert out.results["nonzero_params"].is_monotonic_decreasing


def test_every_option_runs_through_the_cli_and_writes_a_full_curve(tmp_path):
    methods = STEPWISE
    proc = cli("-m", f"pruning={','.join(methods)}", *TINY, f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path,
               store=tmp_path / "store")
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    assert f"sweep of {len(methods)} runs: {len(methods)} ran, 0 skipped, 0 failed" in out + err
    curves = {}
    for job in (tmp_path / "sweep").glob("*_s0"):
        assert json.loads((job / "status.json").read_text())["status"] == "done"
        df = pd.read_csv(Path(job / "results.csv"))
        curves[df["method"].iloc[0]] = df["target_sparsity"].tolist()
    assert curves == {m: [0.0, 0.5, 0.8] for m in methods}
    assert (tmp_path / "sweep" / "comparison.csv").is_file()


@pytest.mark.parametrize("method", ["snip", "synflow"])
def test_pruning_at_initialisation_before_any_training(method, tmp_path):
    cfg = compose_config(*TINY, f"pruning={method}", "schedule.pretrain_epochs=0", "schedule.targets=[0.8]")
    df = run(cfg, tmp_path).results
    assert df["stage"].tolist() == [0, 1] and df["epoch"].tolist() == [0, 1]
    assert df["weight_sparsity"].tolist() == pytest.approx([0.0, 0.8], abs=1e-3)
    assert df["val_acc"].iloc[1] > 0.5, "one epoch of training the network pruned at init must learn something"


@pytest.mark.parametrize("override, setting", [
    ("pruning.rounds=0", "pruning.rounds"),
    ("pruning.baseline=scramble", "pruning.baseline"),
    ("pruning.criterion.num_batches=0", "pruning.criterion.num_batches"),
])
def test_bad_method_settings_fail_before_training(override, setting, tmp_path):
    with pytest.raises(ConfigError, match=setting):
        prepare(compose_config(*TINY, "pruning=taylor", override), tmp_path)
