"""Typed config checks: every option of every checked group passes; a wrong type, an unknown key, a
missing or out-of-range value gets one ConfigError naming the setting, before any work starts."""

import pytest

from prunelab.errors import ConfigError
from prunelab.runs import schemas
from tests.helpers import TINY, compose_config, language_models, options, prepare

NEEDS = {"imagefolder": ["dataset.root=.", "dataset.num_classes=3"], "text": ["model=llama_tiny"],
         **{lm: ["dataset=text"] for lm in language_models()}, "causal_lm": ["model.path=.", "dataset=text"]}


@pytest.mark.parametrize("group, option", [(g, o) for g in schemas.GROUPS for o in options(g)])
def test_every_option_of_a_checked_group_passes(group, option):
    schemas.check(compose_config(f"{group}={option}", *NEEDS.get(option, [])))


@pytest.mark.parametrize("override, setting, says", [
    ("schedule.pretrain_epochs=two", "schedule.pretrain_epochs", "'two' is not an integer"),
    ("schedule.targets=0.5", "schedule.targets", "not a list of numbers"),
    ("+schedule.warmup_epochs=3", "schedule.warmup_epochs", "is not a setting of prunelab.training.schedule.Schedule"),
    ("schedule.targets=[0.5,1.5]", "schedule.targets", "outside [0, 1)"),
    ("schedule.finetune_epochs=0", "schedule.finetune_epochs", "must be >= 1"),
    ("pruning.exclude_output=maybe", "pruning.exclude_output", "is not true or false"),
    ("pruning.exclude=features.0.weight", "pruning.exclude", "not a list of strings"),
    ("+pruning.criterion.power=2", "pruning.criterion.power", "is not a setting of"),
    ("pruning.criterion._target_=prunelab.pruning.criteria.Nope", "pruning.criterion._target_", "cannot import"),
    ("pruning.scope=everywhere", "pruning.scope", "unknown scope"),
    ("dataset.batch_size=1.5", "dataset.batch_size", "is not an integer"),
    ("dataset.batch_size=0", "dataset.batch_size", "must be >= 1"),
    ("dataset.val_fraction=1.5", "dataset.val_fraction", "not strictly between 0 and 1"),
    ("+dataset.shuffle=false", "dataset.shuffle", "is not a setting of prunelab.data.DigitsDataModule"),
    ("dataset=imagefolder", "dataset.root", "has no value"),
    ("seed=abc", "seed", "is not an integer"),
    ("cache=sometimes", "cache", "is not true or false"),
])
def test_a_bad_setting_gets_one_message_naming_it_before_any_work(override, setting, says, tmp_path):
    with pytest.raises(ConfigError) as err:
        prepare(compose_config(*TINY, override), tmp_path)
    assert err.value.setting == setting and says in str(err.value) and "Fix:" in str(err.value)
    assert not any(tmp_path.iterdir())
