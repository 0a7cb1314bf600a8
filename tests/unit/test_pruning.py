"""Selection and criteria: exact counts, clean thresholds, masks that only shrink, seeded randomness."""

import pytest
import torch
from torch import nn

from prunelab.errors import ConfigError
from prunelab.pruning import (
    Magnitude,
    Random,
    UnstructuredPruner,
    prunable_parameters,
    select,
)
from prunelab.pruning.masks import apply_masks, count_parameters, full_masks, sparsity
from tests.helpers import ctx, tiny_net


def test_prunable_parameters_skip_output_biases_and_patterns():
    net = tiny_net()
    assert list(prunable_parameters(net)) == ["0.weight", "3.weight"]
    assert list(prunable_parameters(net, exclude_output=False)) == ["0.weight", "3.weight", "5.weight"]
    assert list(prunable_parameters(net, exclude=["0.*"])) == ["3.weight"]


def test_shared_weights_are_counted_once():
    lin = nn.Linear(5, 5)
    net = nn.Sequential(lin, nn.ReLU(), lin, nn.Linear(5, 2))
    assert list(prunable_parameters(net)) == ["0.weight"]
    assert count_parameters(net)[0] == 5 * 5 + 5 + 5 * 2 + 2


@pytest.mark.parametrize("target", [0.0, 0.3, 0.5, 0.9, 0.99])
def test_global_scope_reaches_exact_count_and_clean_threshold(target):
    net = tiny_net()
    params = prunable_parameters(net)
    masks = UnstructuredPruner(Magnitude(), "global").prune(net, full_masks(params), target, ctx())
    total = sum(m.numel() for m in masks.values())
    assert sum(int((~m).sum()) for m in masks.values()) == round(target * total)
    kept = torch.cat([params[n].detach().abs()[m] for n, m in masks.items()])
    pruned = torch.cat([params[n].detach().abs()[~m] for n, m in masks.items()])
    if len(pruned):
        assert kept.min() >= pruned.max()


@pytest.mark.parametrize("target", [0.3, 0.5, 0.9])
def test_layer_scope_prunes_each_layer_exactly_and_ranks_within_it(target):
    net = tiny_net()
    params = prunable_parameters(net)
    masks = UnstructuredPruner(Magnitude(), "layer").prune(net, full_masks(params), target, ctx())
    for name, m in masks.items():
        assert int((~m).sum()) == round(target * m.numel())
        w = params[name].detach().abs()
        assert w[m].min() >= w[~m].max()


def test_ties_still_give_exact_counts():
    scores = {"a": torch.zeros(10, 10), "b": torch.zeros(7)}
    masks = select(scores, full_masks(scores), 0.5, "global")
    assert sum(int((~m).sum()) for m in masks.values()) == round(0.5 * 107)


def test_masks_only_shrink_across_iterative_targets():
    net = tiny_net()
    params = prunable_parameters(net)
    pruner = UnstructuredPruner(Random(), "global")
    masks = full_masks(params)
    for stage, target in enumerate([0.5, 0.7, 0.9], start=1):
        new = pruner.prune(net, masks, target, ctx(stage))
        for n in masks:
            assert not (new[n] & ~masks[n]).any(), "a pruned weight came back"
        assert sparsity(new) == pytest.approx(target, abs=1 / sum(m.numel() for m in new.values()))
        masks = new


def test_random_masks_follow_the_seed():
    net = tiny_net()
    params = prunable_parameters(net)
    pruner = UnstructuredPruner(Random(), "global")
    a, b, c = (pruner.prune(net, full_masks(params), 0.5, ctx(s)) for s in (1, 1, 2))
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert not all(torch.equal(a[n], c[n]) for n in a)


def test_apply_masks_zeroes_exactly_the_pruned_entries():
    net = tiny_net()
    params = prunable_parameters(net)
    masks = UnstructuredPruner(Magnitude(), "layer").prune(net, full_masks(params), 0.6, ctx())
    apply_masks([params[n] for n in masks], list(masks.values()))
    for n, m in masks.items():
        assert torch.all(params[n][~m] == 0) and torch.all(params[n][m] != 0)


def test_no_prunable_parameters_left_is_a_config_error():
    with pytest.raises(ConfigError, match="pruning.exclude"):
        UnstructuredPruner(Magnitude(), exclude=["*"]).parameters(tiny_net())


def test_unknown_scope_is_a_config_error():
    with pytest.raises(ConfigError, match="pruning.scope"):
        UnstructuredPruner(Magnitude(), scope="blockwise")
