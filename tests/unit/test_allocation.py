"""Allocations (`pruning.scope`): ERK densities and LAMP scores by hand, row counts, exact totals."""

import math

import pytest
import torch

from prunelab.pruning import Magnitude, Random, UnstructuredPruner, select
from prunelab.pruning.allocation import apportion, erk_densities, lamp_scores
from prunelab.pruning.masks import full_masks, sparsity
from tests.helpers import conv_net, ctx

SHAPES = {"a": torch.Size([4, 3]), "b": torch.Size([40, 30]), "c": torch.Size([8, 6, 3, 3])}


def test_erk_densities_follow_the_formula_and_meet_the_density():
    density = 0.3
    d = erk_densities(SHAPES, density)
    # by hand: eps = 0.3 * 1644 / (7 + 70 + 20) = 5.08 gives "a" 5.08 * 7 / 12 > 1, so it stays dense
    # and eps is solved again over b and c
    assert d["a"] == 1.0
    eps = (density * (12 + 1200 + 432) - 12) / ((40 + 30) + (8 + 6 + 3 + 3))
    assert d["b"] == pytest.approx(eps * 70 / 1200) and d["c"] == pytest.approx(eps * 20 / 432)
    total = sum(d[n] * math.prod(s) for n, s in SHAPES.items())
    assert total == pytest.approx(density * 1644)


@pytest.mark.parametrize("target", [0.1, 0.5, 0.9, 0.99])
def test_erk_scope_meets_the_global_target_to_one_weight_and_the_densities_to_one_each(target):
    scores = {n: torch.rand(s, generator=torch.Generator().manual_seed(0)) for n, s in SHAPES.items()}
    masks = select(scores, full_masks(scores), target, "erk")
    n = sum(m.numel() for m in masks.values())
    assert sum(int((~m).sum()) for m in masks.values()) == round(target * n)
    for name, d in erk_densities(SHAPES, 1 - target).items():
        assert abs(int(masks[name].sum()) - d * masks[name].numel()) < 1


def test_lamp_scores_match_the_formula_on_a_tiny_layer():
    w = torch.tensor([[3.0, -1.0], [2.0, 0.5]])
    by_hand = torch.tensor([[9 / 9, 1 / (1 + 4 + 9)], [4 / (4 + 9), 0.25 / (0.25 + 1 + 4 + 9)]], dtype=torch.float64)
    torch.testing.assert_close(lamp_scores(w, torch.ones_like(w, dtype=torch.bool)), by_hand)
    alive = torch.tensor([[True, True], [False, True]])  # a pruned weight adds nothing to the sums
    expected = torch.tensor([[1.0, 1 / 10], [0.0, 0.25 / 10.25]], dtype=torch.float64)
    torch.testing.assert_close(lamp_scores(w, alive), expected)


def test_lamp_keeps_each_layers_largest_weight_and_the_exact_count():
    net = conv_net()
    pruner = UnstructuredPruner(Magnitude(), scope="lamp")
    params = pruner.parameters(net)
    dense = {n: p.detach().clone() for n, p in params.items()}
    masks = pruner.prune(net, full_masks(params), 0.99, ctx())
    assert sparsity(masks) == pytest.approx(round(0.99 * sum(m.numel() for m in masks.values())) /
                                           sum(m.numel() for m in masks.values()))
    for name, w in dense.items():  # its LAMP score is 1, the highest possible
        assert masks[name].reshape(-1)[w.abs().argmax()], name


@pytest.mark.parametrize("target", [0.3, 0.5, 0.77])
def test_row_scope_prunes_every_output_row_alike_with_exact_layer_counts(target):
    net = conv_net()
    pruner = UnstructuredPruner(Random(), scope="row")
    masks = pruner.prune(net, full_masks(pruner.parameters(net)), target, ctx())
    for name, mask in masks.items():
        per_row = (~mask).reshape(mask.shape[0], -1).sum(1)
        assert int(per_row.sum()) == round(target * mask.numel()), name
        assert int(per_row.max() - per_row.min()) <= 1, name


@pytest.mark.parametrize("scope", ["row", "erk", "lamp"])
def test_new_allocations_never_revive_pruned_weights(scope):
    net = conv_net()
    pruner = UnstructuredPruner(Random(), scope=scope)
    first = pruner.prune(net, full_masks(pruner.parameters(net)), 0.5, ctx(seed=1))
    second = pruner.prune(net, first, 0.8, ctx(seed=2))
    assert all(not (second[n] & ~first[n]).any() for n in first)
    assert sparsity(second) == pytest.approx(0.8, abs=2e-3)


def test_apportion_gives_whole_counts_with_the_exact_total():
    assert apportion({"a": 1.5, "b": 1.5, "c": 2.0}, 5) == {"a": 2, "b": 1, "c": 2}
    assert apportion({"a": 0.2, "b": 0.3, "c": 0.5}, 1) == {"a": 0, "b": 0, "c": 1}
