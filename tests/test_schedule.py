"""Schedules: stage/epoch arithmetic and the errors for targets that cannot work."""

import pytest

from prunelab.errors import ConfigError
from prunelab.training.schedule import Schedule


def test_stage_arithmetic():
    s = Schedule(targets=[0.5, 0.8, 0.9], pretrain_epochs=4, finetune_epochs=2)
    assert s.num_stages == 3 and s.total_epochs == 10
    assert [s.stage_at_epoch(e) for e in range(10)] == [0, 0, 0, 0, 1, 1, 2, 2, 3, 3]
    assert Schedule(targets=[0.5], pretrain_epochs=0, finetune_epochs=1).stage_at_epoch(0) == 1


@pytest.mark.parametrize(
    "kwargs, setting",
    [
        ({"targets": [0.5, 1.0]}, "schedule.targets"),
        ({"targets": [-0.1]}, "schedule.targets"),
        ({"targets": [0.8, 0.5]}, "schedule.targets"),
        ({"targets": [0.5, 0.5]}, "schedule.targets"),
        ({"targets": []}, "schedule.targets"),
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
