"""End-to-end runs through the real composed config: results, zeros that stay zero, one-shot vs iterative."""

import pandas as pd
import pytest
import torch

from tests.helpers import TINY, SpyPruner, compose_config, prepare, run

COLUMNS = ["method", "task", "seed", "stage", "target_sparsity", "weight_sparsity", "param_sparsity", "params",
           "nonzero_params",
           "acc_before_ft", "val_acc", "test_acc"]


@pytest.mark.parametrize("dataset", ["digits", "synthetic"])
def test_end_to_end_writes_the_promised_results(dataset, tmp_path):
    cfg = compose_config(*TINY, f"dataset={dataset}", "pruning=magnitude")
    out = run(cfg, tmp_path)
    df = pd.read_csv(tmp_path / "results.csv")
    assert set(COLUMNS) <= set(df.columns)
    assert df["stage"].tolist() == [0, 1, 2]
    assert df["target_sparsity"].tolist() == [0.0, 0.5, 0.8]
    assert df["weight_sparsity"].tolist() == pytest.approx([0.0, 0.5, 0.8], abs=1e-4)
    assert (df["method"] == "magnitude").all() and (df["seed"] == 0).all()
    assert df["nonzero_params"].is_monotonic_decreasing
    assert df["val_acc"].between(0, 1).all() and df["test_acc"].between(0, 1).all()
    pd.testing.assert_frame_equal(df, out.results, check_dtype=False, atol=1e-9)


@pytest.mark.parametrize("optimizer", ["sgd_momentum_wd", "adamw"])
def test_pruned_weights_are_exactly_zero_after_fine_tuning(optimizer, tmp_path):
    extra = [] if optimizer == "sgd_momentum_wd" else [
        "optimizer._target_=torch.optim.AdamW", "~optimizer.momentum", "~optimizer.nesterov", "optimizer.lr=0.003"]
    cfg = compose_config(*TINY, "pruning=random", *extra)
    out = run(cfg, tmp_path)
    params = dict(out.module.model.named_parameters())
    for name, mask in out.masks.items():
        assert torch.all(params[name][~mask] == 0)
        assert (params[name][mask] != 0).float().mean() > 0.99, "fine-tuning must still move kept weights"
    assert out.results["weight_sparsity"].iloc[-1] == pytest.approx(0.8, abs=1e-4)


@pytest.mark.parametrize("schedule", ["oneshot", "iterative"])
def test_oneshot_prunes_dense_weights_and_iterative_builds_on_the_last_stage(schedule, tmp_path):
    cfg = compose_config(*TINY, f"schedule={schedule}", "pruning._target_=tests.helpers.SpyPruner")
    SpyPruner.seen = []
    run(cfg, tmp_path)
    first, second = SpyPruner.seen
    same = all(torch.equal(first[n], second[n]) for n in first)
    assert same == (schedule == "oneshot")
    if schedule == "iterative":  # stage 2 starts from stage 1's pruned, fine-tuned weights
        assert sum(int((w == 0).sum()) for w in second.values()) >= 0.5 * sum(w.numel() for w in second.values())


def test_equal_seeds_give_equal_runs(tmp_path):
    rows = [run(compose_config(*TINY, "pruning=random", "seed=3"), tmp_path / str(i)).results for i in range(2)]
    pd.testing.assert_frame_equal(rows[0].drop(columns=["stage_time_s", "wall_time_s", "latency_ms"]),
                                  rows[1].drop(columns=["stage_time_s", "wall_time_s", "latency_ms"]))


def test_bad_input_fails_before_training(tmp_path):
    from prunelab.errors import ConfigError

    with pytest.raises(ConfigError, match="schedule.targets"):
        prepare(compose_config(*TINY, "schedule.targets=[0.9,0.5]"), tmp_path)
    with pytest.raises(ConfigError, match="pruning.exclude"):
        prepare(compose_config(*TINY, "pruning.exclude=[*]"), tmp_path)
    assert not (tmp_path / "results.csv").exists()
