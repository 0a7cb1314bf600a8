"""The stage engine without a Trainer: stages, exact sparsity, zeros held, rows, sinks, state round trip."""

import pytest
import torch

from prunelab.pruning import Magnitude, UnstructuredPruner
from prunelab.training.engine import StageEngine
from prunelab.training.meter import Meter
from prunelab.training.schedule import Schedule
from tests.helpers import FakeHost, drive

LABELS = {"method": "magnitude", "family": "magnitude", "model": "mlp", "dataset": "toy", "schedule": "iterative",
          "seed": 0}


class Recorder:
    def __init__(self):
        self.started, self.stages, self.curves = 0, [], []

    def start(self):
        self.started += 1

    def stage_done(self, record):
        self.stages.append((record.stage, dict(record.row), len(record.rows)))

    def run_done(self, rows):
        self.curves.append(list(rows))


def engine_and_host(sinks=()):
    schedule = Schedule(targets=[0.5, 0.75], finetune_epochs=1, pretrain_epochs=1)
    pruner = UnstructuredPruner(Magnitude(), exclude_output=False)
    meter = Meter(latency_repeats=1, latency_warmup=0)
    return StageEngine(pruner, schedule, LABELS, meter=meter, sinks=sinks), FakeHost()


def test_stages_reach_exact_sparsity_hold_zeros_and_feed_the_sinks():
    sink = Recorder()
    engine, host = engine_and_host([sink])
    engine.configure(host)
    engine.start(host)
    step = drive(engine, host, range(3))
    engine.finish(host, 2, step)
    weights = [host.model[0].weight, host.model[2].weight]
    assert [r["stage"] for r in engine.rows] == [0, 1, 2]
    assert [r["weight_sparsity"] for r in engine.rows] == [0.0, 0.5, 0.75]
    # every parameter: the biases stay dense (6*8 + 8 + 8*3 + 3 = 83 parameters, 72 of them the two weights)
    assert [r["param_sparsity"] for r in engine.rows] == pytest.approx([0.0, 36 / 83, 54 / 83])
    assert sum(int((w == 0).sum()) for w in weights) == round(0.75 * (48 + 24))
    assert all(torch.equal(w != 0, engine.masks[n]) for w, n in zip(weights, ["0.weight", "2.weight"]))
    assert [r["acc_before_ft"] for r in engine.rows] == [0.5, 0.5, 0.5] and engine.rows[1]["test_acc"] == 0.25
    assert host.stages == [(1, 1.0), (1, 1.0), (1, 1.0)] and host.rebuilt == 2
    assert sink.started == 1 and [s for s, _, _ in sink.stages] == [0, 1, 2] and len(sink.curves) == 1
    assert sink.curves[0] == engine.rows and sink.stages[2][2] == 3


def test_finish_is_idempotent():
    sink = Recorder()
    engine, host = engine_and_host([sink])
    step = drive(engine, host, range(3))
    engine.finish(host, 2, step)
    engine.finish(host, 2, step)
    assert len(engine.rows) == 3 and len(sink.curves) == 1


def test_a_resumed_engine_continues_to_the_same_rows_and_masks():
    engine, host = engine_and_host()
    step = drive(engine, host, range(2))
    saved, weights = engine.state_dict(), {k: v.clone() for k, v in host.model.state_dict().items()}
    step_at = step
    step = drive(engine, host, range(2, 3), step)
    engine.finish(host, 2, step)

    resumed, host2 = engine_and_host()
    host2.model.load_state_dict(weights)
    resumed.load_state_dict(saved)
    resumed.start(host2)
    step = drive(resumed, host2, range(2, 3), step_at)
    resumed.finish(host2, 2, step)
    drop = ("stage_time_s", "wall_time_s", "latency_ms")
    assert [{k: v for k, v in r.items() if k not in drop} for r in resumed.rows] == \
           [{k: v for k, v in r.items() if k not in drop} for r in engine.rows]
    assert all(torch.equal(resumed.masks[n], engine.masks[n]) for n in engine.masks)


def test_a_non_finite_loss_stops_the_run_with_stage_and_sparsity():
    engine, host = engine_and_host()
    drive(engine, host, range(2))
    with pytest.raises(Exception, match=r"stage 1, sparsity 0.5000") as err:
        engine.epoch_end(torch.tensor(float("nan")), 1, host.model)
    assert type(err.value).__name__ == "Diverged"
