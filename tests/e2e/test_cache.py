"""The dense cache: keyed by exactly the settings of dense training, trained once however many runs
ask at once, never read half-written, and every method starts from the same dense weights."""


import pandas as pd

from tests.helpers import SMALL, TINY, compose_config, run


def test_every_method_starts_from_one_dense_model_and_ends_as_without_the_cache(tmp_path):
    store = f"store_dir={tmp_path / 'store'}"
    small = [*TINY, *SMALL, "model=lenet_300_100", store]
    runs = {m: run(compose_config(*small, f"pruning={m}"), tmp_path / m).results for m in ("magnitude", "random")}
    assert (tmp_path / "store" / "dense" / "trained.log").read_text().count("\n") == 1
    dense = [r[r.stage == 0].drop(columns=["method", "family", "stage_time_s", "wall_time_s", "latency_ms"]) for r in runs.values()]
    pd.testing.assert_frame_equal(*dense)
    uncached = run(compose_config(*small, "pruning=magnitude", "cache=false"), tmp_path / "uncached").results
    times = ["stage_time_s", "wall_time_s", "latency_ms"]  # measured, not computed
    pd.testing.assert_frame_equal(runs["magnitude"].drop(columns=times), uncached.drop(columns=times))
