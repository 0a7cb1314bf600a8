"""Fixed per-run costs made optional: latency only at the stages asked for (`metrics.latency_stages`, the
column stays in every row) and the final model without its torch.export program (`save_model=state`)."""

import math

import pytest

from prunelab.errors import ConfigError
from prunelab.keys import NOT_RESULTS
from prunelab.pruning import Magnitude, UnstructuredPruner
from prunelab.runs.spec import from_config
from prunelab.training.engine import StageEngine
from prunelab.training.meter import Meter
from prunelab.training.schedule import Schedule
from tests.helpers import FakeHost, compose_config, drive

LABELS = {"method": "magnitude", "family": "magnitude", "model": "mlp", "dataset": "toy", "schedule": "iterative",
          "seed": 0}


def latencies(stages: str) -> list[float]:
    schedule = Schedule(targets=[0.5, 0.75], finetune_epochs=1, pretrain_epochs=1)
    meter = Meter(latency_repeats=1, latency_warmup=0, latency_stages=stages)
    engine, host = StageEngine(UnstructuredPruner(Magnitude(), exclude_output=False), schedule, LABELS, meter), FakeHost()
    engine.configure(host)
    engine.start(host)
    engine.finish(host, 2, drive(engine, host, range(3)))
    return [r["latency_ms"] for r in engine.rows]


@pytest.mark.parametrize(("stages", "measured"), [("all", [True, True, True]), ("final", [False, False, True]),
                                                  ("none", [False, False, False])])
def test_latency_is_measured_at_the_stages_asked_for(stages, measured):
    found = latencies(stages)
    assert [not math.isnan(v) for v in found] == measured
    assert all(v > 0 for v in found if not math.isnan(v))


def test_a_bad_latency_stages_value_is_a_config_error():
    with pytest.raises(ConfigError, match="metrics.latency_stages"):
        Meter(latency_stages="last")


def test_latency_stages_are_not_part_of_a_runs_identity():
    assert "metrics.latency_stages" in NOT_RESULTS


@pytest.mark.parametrize("value", ["maybe", 2])
def test_a_bad_save_model_value_is_a_config_error(value, tmp_path):
    with pytest.raises(ConfigError, match="save_model"):
        from_config(compose_config(f"save_model={value}"), tmp_path)


@pytest.mark.parametrize("value", ["true", "false", "state"])
def test_save_model_takes_true_false_or_state(value, tmp_path):
    assert from_config(compose_config(f"save_model={value}"), tmp_path).config["save_model"] in (True, False, "state")
