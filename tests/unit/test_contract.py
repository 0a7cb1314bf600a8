"""The pruner contract: every option of the `pruning` group, and the plugin example, builds a `Pruner` whose
hooks keep the base's signatures, so the engine and the API call them without probing."""

import importlib.util
import inspect

import pytest
import torch
from torch import nn

from prunelab.config import build
from prunelab.errors import ConfigError
from prunelab.pruning import Pruner, UnstructuredPruner
from prunelab.training.engine import StageEngine
from prunelab.training.schedule import Schedule
from tests.helpers import PLUGINS_DOC, compose_config, example_files, options

HOOKS = ["parameters", "weights", "prune", "dense_penalty", "observe", "stepped", "update", "removal", "replay",
         "state_dict", "load_state_dict"]


def check_contract(pruner) -> None:
    assert isinstance(pruner, Pruner)
    assert isinstance(pruner.needs_gradual, bool)
    for hook in HOOKS:
        mine, base = inspect.signature(getattr(pruner, hook)), inspect.signature(getattr(Pruner, hook))
        assert list(mine.parameters) == list(base.parameters)[1:], f"{type(pruner).__name__}.{hook}{mine}"
    assert type(pruner).prune is not Pruner.prune, "prune is the one hook every pruner overrides"


@pytest.mark.parametrize("option", options("pruning"))
def test_every_pruning_option_builds_a_pruner_that_keeps_the_contract(option):
    check_contract(build(compose_config(f"pruning={option}").pruning))


def plugin_example(tmp_path):
    path = tmp_path / "my_methods.py"
    path.write_text(example_files(PLUGINS_DOC.read_text())["my_methods.py"])
    spec = importlib.util.spec_from_file_location("plugin_example", path)
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    return plugin


def test_the_plugin_example_keeps_the_contract(tmp_path):
    plugin = plugin_example(tmp_path)
    check_contract(UnstructuredPruner(plugin.GradMagnitude()))
    check_contract(plugin.LayerMagnitude())


def test_the_example_pruner_of_ones_own_prunes_the_target_and_zeroes_it(tmp_path):
    pruner, model = plugin_example(tmp_path).LayerMagnitude(), nn.Sequential(nn.Linear(8, 6), nn.Linear(6, 4))
    params = pruner.parameters(model)
    masks = pruner.prune(model, {n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()}, 0.5, None)
    assert masks.keys() == params.keys() == {"0.weight"}  # the output layer keeps its weights
    assert int(masks["0.weight"].sum()) == 24 and torch.all(model[0].weight[~masks["0.weight"]] == 0)


def test_the_base_hooks_do_nothing():
    pruner, model = Pruner(), nn.Linear(3, 2)
    before = model.weight.detach().clone()
    pruner.dense_penalty(model)
    pruner.observe({}, 0, 1)
    pruner.stepped({})
    assert pruner.update({}, {}, 0, 1, 0) is None and pruner.removal() == {} and pruner.state_dict() == {}
    assert torch.equal(model.weight, before)
    with pytest.raises(NotImplementedError, match="must define prune"):
        pruner.prune(model, {}, 0.5, None)


def test_an_object_that_is_not_a_pruner_is_a_config_error_before_training():
    class Duck:
        def prune(self, model, masks, target, ctx):
            return masks

    with pytest.raises(ConfigError, match="subclass prunelab.pruning.Pruner"):
        StageEngine(Duck(), Schedule(targets=[0.5], pretrain_epochs=1, finetune_epochs=1), {"seed": 0})
