"""Pruning schedules: stage arithmetic, the AGP formula, rewinding settings and per-layer rates, checked before training."""

import pytest
import torch

from prunelab.errors import ConfigError
from prunelab.pruning import Magnitude, UnstructuredPruner, prunable_parameters
from prunelab.pruning.masks import full_masks
from prunelab.pruning.select import layer_targets
from prunelab.training.schedule import GradualSchedule, Schedule, agp_sparsity
from tests.helpers import ctx, tiny_net


def test_stage_arithmetic():
    s = Schedule(targets=[0.5, 0.8, 0.9], pretrain_epochs=4, finetune_epochs=2)
    assert s.num_stages == 3 and s.total_epochs == 10
    assert [s.stage_at_epoch(e) for e in range(10)] == [0, 0, 0, 0, 1, 1, 2, 2, 3, 3]
    assert Schedule(targets=[0.5], pretrain_epochs=0, finetune_epochs=1).stage_at_epoch(0) == 1


def test_a_schedule_without_targets_trains_dense_only():
    s = Schedule(targets=[], pretrain_epochs=3, finetune_epochs=1)
    assert s.num_stages == 0 and s.total_epochs == 3
    assert [s.stage_at_epoch(e) for e in range(3)] == [0, 0, 0]


@pytest.mark.parametrize(
    "kwargs, setting",
    [
        ({"targets": [0.5, 1.0]}, "schedule.targets"),
        ({"targets": [-0.1]}, "schedule.targets"),
        ({"targets": [0.8, 0.5]}, "schedule.targets"),
        ({"targets": [0.5, 0.5]}, "schedule.targets"),
        ({"targets": [], "pretrain_epochs": 0}, "schedule.targets"),
        ({"targets": [0.5], "finetune_epochs": 0}, "schedule.finetune_epochs"),
        ({"targets": [0.5], "pretrain_epochs": -1}, "schedule.pretrain_epochs"),
    ],
)
def test_bad_schedules_name_the_setting_and_the_fix(kwargs, setting):
    with pytest.raises(ConfigError) as err:
        Schedule(**{"pretrain_epochs": 1, "finetune_epochs": 1, **kwargs})
    assert str(err.value).startswith(setting) and "Fix:" in str(err.value)


def test_oneshot_targets_need_not_increase():
    assert Schedule(targets=[0.9, 0.5], pretrain_epochs=1, finetune_epochs=1, cumulative=False).num_stages == 2


def test_agp_formula_midpoint_and_end_are_exact():
    assert agp_sparsity(50, 0.0, 0.9, 0, 10, 10) == pytest.approx(0.7875, abs=1e-9)
    assert agp_sparsity(100, 0.0, 0.9, 0, 10, 10) == 0.9
    assert agp_sparsity(0, 0.0, 0.9, 0, 10, 10) == 0.0
    assert agp_sparsity(59, 0.0, 0.9, 0, 10, 10) == agp_sparsity(50, 0.0, 0.9, 0, 10, 10), "changes every dt only"
    assert agp_sparsity(500, 0.2, 0.9, 0, 10, 10) == 0.9 and agp_sparsity(-5, 0.2, 0.9, 0, 10, 10) == 0.2


def test_agp_prunes_every_dt_steps_of_the_ramp_from_the_previous_target():
    s = GradualSchedule(targets=[0.5, 0.9], pretrain_epochs=1, finetune_epochs=3, ramp_epochs=2, every=5)
    steps = {t: s.target_at(2, t, steps_per_epoch=10) for t in range(31)}
    pruned_at = {t: v for t, v in steps.items() if v is not None}
    assert list(pruned_at) == [0, 5, 10, 15, 20]
    assert pruned_at[0] == 0.5 and pruned_at[20] == 0.9
    assert pruned_at[10] == pytest.approx(0.9 - 0.4 * 0.125)
    assert list(pruned_at.values()) == sorted(pruned_at.values())
    assert s.target_at(1, 0, 10) == 0.0


@pytest.mark.parametrize("kwargs, setting", [
    ({"rewind": "start"}, "schedule.rewind"),
    ({"rewind": -3}, "schedule.rewind"),
    ({"rewind": 100, "pretrain_epochs": 0}, "schedule.rewind"),
    ({"finetune_lr_scale": 0.0}, "schedule.finetune_lr_scale"),
])
def test_bad_rewind_and_lr_scale_name_the_setting(kwargs, setting):
    with pytest.raises(ConfigError, match=setting):
        Schedule(**{"targets": [0.5], "pretrain_epochs": 1, "finetune_epochs": 1, **kwargs})


@pytest.mark.parametrize("kwargs, setting", [
    ({"ramp_epochs": 3}, "schedule.ramp_epochs"),
    ({"every": 0}, "schedule.every"),
])
def test_bad_agp_settings_name_the_setting(kwargs, setting):
    with pytest.raises(ConfigError, match=setting):
        GradualSchedule(**{"targets": [0.5], "pretrain_epochs": 1, "finetune_epochs": 2, **kwargs})


def test_steps_that_do_not_exist_are_refused_before_training():
    with pytest.raises(ConfigError, match="schedule.rewind"):
        Schedule(targets=[0.5], pretrain_epochs=2, finetune_epochs=1, rewind=21).check_steps(10)
    with pytest.raises(ConfigError, match="schedule.every"):
        GradualSchedule(targets=[0.5], pretrain_epochs=1, finetune_epochs=1, every=11).check_steps(10)


@pytest.mark.parametrize("target", [0.2, 0.5904, 0.9])
def test_layer_rates_prune_each_layer_exactly_to_its_own_target(target):
    net = tiny_net()
    params = prunable_parameters(net, exclude_output=False)
    rates = {"5.*": 0.5, "0.weight": 2.0}
    pruner = UnstructuredPruner(Magnitude(), "layer", exclude_output=False, layer_rates=rates)
    masks = pruner.prune(net, full_masks(params), target, ctx())
    density = {"0.weight": (1 - target) ** 2, "3.weight": 1 - target, "5.weight": (1 - target) ** 0.5}
    for name, mask in masks.items():
        assert int(mask.sum()) == mask.numel() - round((1 - density[name]) * mask.numel())


def test_lottery_rates_give_twenty_and_ten_percent_per_round():
    rate = torch.log(torch.tensor(0.9, dtype=torch.float64)) / torch.log(torch.tensor(0.8, dtype=torch.float64))
    for k in range(1, 16):
        t = layer_targets(["fc", "out"], 1 - 0.8**k, {"out": float(rate)})
        assert t["fc"] == pytest.approx(1 - 0.8**k) and t["out"] == pytest.approx(1 - 0.9**k, abs=1e-12)


@pytest.mark.parametrize("rates, scope, setting", [
    ({"5.weight": 0.5}, "global", "pruning.layer_rates"),
    ({"5.weight": 0.0}, "layer", "pruning.layer_rates"),
    ({"fc9.*": 0.5}, "layer", "pruning.layer_rates"),
])
def test_bad_layer_rates_name_the_setting(rates, scope, setting):
    with pytest.raises(ConfigError, match=setting):
        UnstructuredPruner(Magnitude(), scope, exclude_output=False, layer_rates=rates).parameters(tiny_net())
