"""A user's own code that cannot work gets one ConfigError: a `_target_` that does not import names the module
and Python's search path; a criterion's scores of the wrong shape, missing or NaN name the parameter."""

import os

import pytest
import torch

from prunelab.errors import ConfigError
from prunelab.pruning import UnstructuredPruner
from prunelab.runs import schemas
from tests.helpers import ctx, tiny_net


def test_a_target_that_does_not_import_names_the_module_and_the_search_path():
    with pytest.raises(ConfigError) as err:
        schemas.check_node("pruning", {"_target_": "prunelab.pruning.UnstructuredPruner",
                                       "criterion": {"_target_": "my_methods.criteria.Saliency"}})
    assert err.value.setting == "pruning.criterion._target_"
    assert "no module 'my_methods'" in err.value.problem and os.getcwd() in err.value.problem
    assert "PYTHONPATH" in err.value.fix


def test_a_name_missing_from_an_importable_module_lists_what_it_has():
    with pytest.raises(ConfigError) as err:
        schemas.check_node("pruning.criterion", {"_target_": "prunelab.pruning.criteria.Magnitud"})
    assert "module 'prunelab.pruning.criteria' has no 'Magnitud'" in err.value.problem
    assert "'Magnitude'" in err.value.fix


def shaped(n: int):
    return lambda model, params, ctx: {k: p.detach().abs().flatten()[:n] for k, p in params.items()}


def nan_in(name: str):
    def criterion(model, params, ctx):
        scores = {k: p.detach().abs() for k, p in params.items()}
        scores[name] = scores[name].clone().fill_(float("nan"))
        return scores
    return criterion


@pytest.mark.parametrize("criterion, says", [
    (shaped(5), "returned scores of shape [5] for 0.weight of shape [4, 1, 3, 3]"),
    (nan_in("3.weight"), "returned NaN scores for 3.weight"),
    (lambda model, params, ctx: {}, "returned no score tensor for 0.weight"),
    (lambda model, params, ctx: [p.abs() for p in params.values()], "returned list, not a dict of tensors"),
])
def test_a_criterion_with_bad_scores_is_named_with_the_parameter(criterion, says):
    model = tiny_net()
    pruner = UnstructuredPruner(criterion)
    with pytest.raises(ConfigError) as err:
        pruner.prune(model, {n: torch.ones_like(p, dtype=torch.bool) for n, p in pruner.parameters(model).items()},
                     0.5, ctx())
    assert err.value.setting == "pruning.criterion" and says in err.value.problem
