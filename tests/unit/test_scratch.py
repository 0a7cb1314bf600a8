"""Training pruned networks from scratch (Liu et al. 2019) without a Trainer: fresh weights, stage lengths."""

import pytest
import torch
from torch import nn

from prunelab.errors import ConfigError
from prunelab.pruning import Magnitude, UnstructuredPruner
from prunelab.seeds import reinit_seed
from prunelab.training.engine import StageEngine
from prunelab.training.meter import Meter
from prunelab.training.rewind import fresh_init, reinitialise
from prunelab.training.schedule import Schedule
from tests.helpers import FakeHost, drive

LABELS = {"method": "magnitude", "family": "magnitude", "model": "mlp", "dataset": "toy", "schedule": "oneshot",
          "seed": 0}


def factory():
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def scratch_engine(retrain):
    schedule = Schedule(targets=[0.5, 0.75], finetune_epochs=1, pretrain_epochs=2, cumulative=False, retrain=retrain)
    pruner = UnstructuredPruner(Magnitude(), exclude_output=False)
    meter = Meter(latency_repeats=1, latency_warmup=0)
    return StageEngine(pruner, schedule, LABELS, meter=meter, model_factory=factory), FakeHost()


def test_scratch_e_trains_fresh_weights_under_the_mask_for_the_dense_epochs():
    engine, host = scratch_engine("scratch_e")
    engine.configure(host)
    starts = {}
    drive(engine, host, range(6), after_step=lambda s: s in (5, 9) and starts.update(
        {s: ({n: m.clone() for n, m in engine.masks.items()}, host.model[0].weight.detach().clone())}))
    assert [r["stage"] for r in engine.rows] == [0, 1]
    assert host.stages == [(2, 1.0), (2, 1.0), (2, 1.0)] and host.total_epochs is None
    for step, stage in [(5, 1), (9, 2)]:  # the first step of each stage
        masks, weight = starts[step]
        fresh = fresh_init(factory, reinit_seed(0, stage))["0.weight"]
        # one fake step (drive: -0.009 per kept weight) after the fresh draw, under the stage's mask
        assert torch.allclose(weight, (fresh - 0.009) * masks["0.weight"])


def test_scratch_b_trains_as_many_more_epochs_as_the_dense_model_has_more_macs():
    engine, host = scratch_engine("scratch_b")
    engine.configure(host)
    step = drive(engine, host, range(2 + 4 + 8))
    engine.finish(host, 13, step)
    # dense: 6*8 + 8*3 = 72 MACs; magnitude keeps 36 (50%) then 18 (75%) weights: 2x and 4x dense training's 2 epochs
    assert [r["nonzero_macs"] for r in engine.rows] == [72, 36, 18]
    assert host.stages == [(2, 1.0), (4, 1.0), (8, 1.0)] and host.total_epochs == 14
    assert [r["epoch"] for r in engine.rows] == [2, 6, 13]


def test_a_lengthened_run_tells_the_resumed_trainer_its_length():
    engine, host = scratch_engine("scratch_b")
    step = drive(engine, host, range(3))
    resumed, host2 = scratch_engine("scratch_b")
    resumed.load_state_dict(engine.state_dict())
    resumed.start(host2)
    assert host2.total_epochs == 2 + 4 + 2 and step == 6


def test_a_pruned_architecture_gets_a_fresh_draw_of_its_own_widths():
    narrow = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    before = narrow[0].weight.detach().clone()
    state = torch.random.get_rng_state()
    reinitialise(narrow, factory, 7)
    first = narrow[0].weight.detach().clone()
    reinitialise(narrow, factory, 7)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert not torch.equal(first, before) and torch.equal(narrow[0].weight, first)
    assert first.abs().max() <= 1 / 6 ** 0.5  # PyTorch's Linear draws from U(-1/sqrt(fan_in), 1/sqrt(fan_in))


@pytest.mark.parametrize("kwargs, problem", [
    (dict(cumulative=True), "schedule=oneshot"), (dict(rewind="init"), "rewind=null"),
    (dict(pretrain_epochs=0), "pretrain_epochs >= 1"), (dict(retrain="scratch"), "one of"),
])
def test_scratch_settings_that_cannot_work_fail_before_training(kwargs, problem):
    settings = dict(targets=[0.5], finetune_epochs=1, pretrain_epochs=2, cumulative=False, retrain="scratch_e")
    with pytest.raises(ConfigError, match=problem):
        Schedule(**{**settings, **kwargs})
