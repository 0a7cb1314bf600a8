"""Sparsity patterns: N:M groups along the input dimension, whole blocks, misfit layers named before training."""

import pytest
import torch
from torch import nn

from prunelab.errors import ConfigError
from prunelab.pruning import Magnitude, Random, UnstructuredPruner
from prunelab.pruning.masks import full_masks, sparsity
from prunelab.pruning.patterns import Block
from tests.helpers import conv_net, ctx, kept_per_group


@pytest.mark.parametrize("criterion", [Magnitude(), Random()])
@pytest.mark.parametrize("n, m", [(2, 4), (4, 8), (1, 4)])
def test_nm_keeps_exactly_n_of_every_m_in_every_layer(criterion, n, m):
    net = conv_net()
    pruner = UnstructuredPruner(criterion, pattern=f"{n}:{m}")
    params = pruner.parameters(net)
    masks = pruner.prune(net, full_masks(params), 1 - n / m, ctx())
    assert list(masks) == ["0.weight", "3.weight", "5.weight"]
    for name, mask in masks.items():
        assert (kept_per_group(mask, m) == n).all(), name
        assert (params[name][~mask] == 0).all()
    assert sparsity(masks) == pytest.approx(1 - n / m)


def test_nm_groups_a_convs_input_channels_at_each_kernel_position():
    conv = nn.Conv2d(4, 1, (1, 2), bias=False)
    with torch.no_grad():  # kernel position 0: channels score 4,3,2,1; position 1: 1,2,3,4
        conv.weight.copy_(torch.tensor([[[[4.0, 1.0]], [[3.0, 2.0]], [[2.0, 3.0]], [[1.0, 4.0]]]]))
    net = nn.Sequential(conv)
    pruner = UnstructuredPruner(Magnitude(), exclude_output=False, pattern="2:4")
    masks = pruner.prune(net, full_masks(pruner.parameters(net)), 0.5, ctx())
    expected = torch.tensor([[[[True, False]], [[True, False]], [[False, True]], [[False, True]]]])
    assert torch.equal(masks["0.weight"], expected)


def test_nm_never_revives_and_holds_over_iterative_stages():
    net = conv_net()
    pruner = UnstructuredPruner(Random(), pattern="2:4")
    first = pruner.prune(net, full_masks(pruner.parameters(net)), 0.5, ctx(seed=1))
    second = pruner.prune(net, first, 0.5, ctx(seed=2))
    assert all(torch.equal(first[n], second[n]) for n in first), "pruned weights must stay pruned"
    extra = {n: m.clone() for n, m in first.items()}
    extra["3.weight"][0, :4] = False  # a group that already lost three of four
    third = pruner.prune(net, extra, 0.5, ctx(seed=3))
    assert all(not (third[n] & ~extra[n]).any() for n in extra)


def test_layers_that_cannot_hold_the_pattern_are_named_before_training():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8, 4), nn.Linear(4, 2))
    with pytest.raises(ConfigError, match=r"\['0.weight'\].*pruning.exclude=\['0.weight'\]"):
        UnstructuredPruner(Magnitude(), pattern="2:4").parameters(net)
    with pytest.raises(ConfigError, match=r"'2.weight'"):
        UnstructuredPruner(Magnitude(), pattern="block", block_shape=[8, 4]).parameters(net)


@pytest.mark.parametrize("kwargs, setting", [
    ({"pattern": 124}, "pruning.pattern"),  # YAML 1.1 reads an unquoted 2:4 as the sexagesimal 124
    ({"pattern": "4:2"}, "pruning.pattern"),
    ({"pattern": "block", "block_shape": [4]}, "pruning.block_shape"),
    ({"pattern": "2:4", "scope": "erk"}, "pruning.pattern"),
    ({"pattern": "2:4", "scope": "layer", "layer_rates": {"*": 0.5}}, "pruning.pattern"),
])
def test_bad_patterns_raise_config_errors(kwargs, setting):
    with pytest.raises(ConfigError, match=setting):
        UnstructuredPruner(Magnitude(), **kwargs)


def test_a_block_scores_the_sum_of_its_scores_and_is_kept_or_pruned_whole():
    lin = nn.Linear(4, 4, bias=False)
    with torch.no_grad():  # 2x2 blocks; the top-left block has the single largest weight but the lowest sum
        lin.weight.copy_(torch.tensor([[5.0, 0, 3, 3], [0, 0, 3, 3], [2, 2, 1, 1], [2, 2, 1, 1]]))
    net = nn.Sequential(lin)
    pruner = UnstructuredPruner(Magnitude(), exclude_output=False, pattern="block", block_shape=[2, 2])
    masks = pruner.prune(net, full_masks(pruner.parameters(net)), 0.5, ctx())
    expected = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0]], dtype=torch.bool)
    assert torch.equal(masks["0.weight"], expected)


@pytest.mark.parametrize("scope", ["global", "layer", "erk", "lamp"])
@pytest.mark.parametrize("target", [0.3, 0.5, 0.9])
def test_block_masks_are_whole_blocks_at_the_nearest_block_count(scope, target):
    net = conv_net()
    pruner = UnstructuredPruner(Random(), scope=scope, pattern="block", block_shape=[4, 4])
    params = pruner.parameters(net)
    masks = pruner.prune(net, full_masks(params), target, ctx())
    block = Block(4, 4)
    for name, mask in masks.items():
        counts = block.pool(mask.float())
        assert ((counts == 0) | (counts == 16)).all(), name
    blocks = sum(m.numel() for m in masks.values()) // 16
    assert sparsity(masks) * blocks == pytest.approx(round(target * blocks), abs=1 if scope in ("layer", "erk") else 0)
