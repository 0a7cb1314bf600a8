"""Every schedule option, pruning while training (movement, SET, RigL, static) and the scratch controls,
end to end through the CLI on digits."""

import json

import pandas as pd
import pytest

from tests.helpers import TINY, cli, options

# Settings a schedule option needs to fit TINY's one-epoch stages.
FITS = {"agp": ["schedule.ramp_epochs=1", "schedule.every=5"]}
RUNS = [(f"schedule={s}", *FITS.get(s, [])) for s in options("schedule")] + [
    ("pruning=movement", "schedule=agp", *FITS["agp"]),
    ("pruning=movement_accumulated", "schedule=agp", *FITS["agp"]),
    ("pruning=rigl", "schedule=sparse_training", "pruning.delta_t=4"),
    ("pruning=set", "schedule=sparse_training", "pruning.delta_t=4", "pruning.scope=layer"),
    ("pruning=static", "schedule=sparse_training"),
    ("pruning=magnitude", "schedule=oneshot", "schedule.retrain=scratch_e"),
    ("pruning=l1_filter", "schedule=oneshot", "schedule.retrain=scratch_b"),
]


@pytest.mark.slow  # a multirun or CLI subprocesses: the slow suite (pytest -m slow) runs it
@pytest.mark.parametrize("overrides", RUNS, ids=" ".join)
def test_the_option_runs_through_the_cli_and_writes_a_full_curve(overrides, tmp_path):
    proc = cli(*TINY, *overrides, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, store=tmp_path / "store")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    run = tmp_path / "run"
    assert json.loads((run / "status.json").read_text())["status"] == "done"
    df = pd.read_csv(run / "results.csv")
    assert df["target_sparsity"].tolist() == [0.0, 0.5, 0.8]
    if "pruning=l1_filter" not in overrides:  # unstructured: the targets exactly
        assert df["weight_sparsity"].iloc[1:].tolist() == pytest.approx([0.5, 0.8], abs=1e-3)
    if "schedule.retrain=scratch_b" in overrides:  # compute-matched: stage k trains 2 * dense/pruned MACs epochs
        lengths = df["epoch"].diff().iloc[1:].tolist()
        assert lengths == [max(1, round(2 * r)) for r in (df["macs"].iloc[0] / df["nonzero_macs"].iloc[1:])]
