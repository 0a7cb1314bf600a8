"""Wanda against |W| * ||X|| by hand; calibration draws; one-shot and iterative use through the pruner."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from prunelab.errors import ConfigError
from prunelab.pruning import UnstructuredPruner
from prunelab.pruning.calibration import Calibration
from prunelab.pruning.masks import full_masks, sparsity
from prunelab.pruning.wanda import Wanda, WandaPruner
from tests.helpers import conv_net, ctx, image_batches


def test_wanda_on_a_linear_layer_is_abs_w_times_the_input_column_norms():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 2))
    x = torch.tensor([[1.0, 0.0, 2.0], [2.0, 0.0, -1.0], [0.0, 3.0, 2.0]])
    scores = Wanda(Calibration(num_samples=3, batch_size=2))(net, {"0.weight": net[0].weight}, ctx(data=[(x, None)]))
    norms = torch.tensor([5.0, 9.0, 9.0]).sqrt()  # column sums of squares: 1+4, 9, 4+1+4
    torch.testing.assert_close(scores["0.weight"], net[0].weight.detach().abs() * norms)


def test_wanda_on_a_conv_uses_the_unfolded_zero_padded_patches():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 2, padding=1, stride=2)
    x = torch.randn(4, 2, 3, 3)
    scores = Wanda(Calibration(num_samples=4))(nn.Sequential(conv), {"0.weight": conv.weight}, ctx(data=[(x, None)]))
    padded = F.pad(x, (1, 1, 1, 1))
    sq = torch.zeros(2, 2, 2)  # input channel, kernel row, kernel column
    for i in range(0, 4, 2):  # output positions (stride 2 over the padded 5x5 input)
        for j in range(0, 4, 2):
            sq += padded[:, :, i:i + 2, j:j + 2].pow(2).sum(0)
    torch.testing.assert_close(scores["0.weight"], conv.weight.detach().abs() * sq.sqrt())


def test_calibration_draws_the_seeded_samples_uniformly_in_batches():
    data = [(torch.arange(10 * b, 10 * b + 10).float().unsqueeze(1), None) for b in range(5)]
    draw = Calibration(num_samples=7, batch_size=3, seed=4).inputs(ctx(data=data), torch.device("cpu"))
    assert [len(b) for b in draw] == [3, 3, 1]
    again = Calibration(num_samples=7, batch_size=3, seed=4).inputs(ctx(data=data), torch.device("cpu"))
    other = Calibration(num_samples=7, batch_size=3, seed=5).inputs(ctx(data=data), torch.device("cpu"))
    assert torch.equal(torch.cat(draw), torch.cat(again)) and not torch.equal(torch.cat(draw), torch.cat(other))
    assert len(set(torch.cat(draw).flatten().tolist())) == 7 and torch.cat(draw).max() >= 10


@pytest.mark.parametrize("scope, pattern", [("row", "unstructured"), ("layer", "unstructured"), ("row", "2:4")])
def test_wanda_prunes_one_shot_and_iteratively_without_reviving(scope, pattern):
    net, data = conv_net(), image_batches()
    pruner = UnstructuredPruner(Wanda(Calibration(num_samples=32)), scope=scope, pattern=pattern)
    params = pruner.parameters(net)
    first = pruner.prune(net, full_masks(params), 0.4, ctx(data=data))
    second = pruner.prune(net, first, 0.5 if pattern == "2:4" else 0.7, ctx(data=data))
    assert sparsity(second) == pytest.approx(0.5 if pattern == "2:4" else 0.7, abs=1e-3)
    assert all(not (second[n] & ~first[n]).any() for n in first)
    assert all((params[n][~m] == 0).all() for n, m in second.items())


def test_unsupported_layers_and_settings_raise_config_errors():
    with pytest.raises(ConfigError, match="pruning.calibration.num_samples"):
        Calibration(num_samples=0)
    net = nn.Sequential(nn.Conv1d(2, 4, 3), nn.Flatten(), nn.Linear(8, 2))
    with pytest.raises(ConfigError, match="Conv1d"):
        Wanda(Calibration())(net, {"0.weight": net[0].weight}, ctx(data=[(torch.randn(2, 2, 4), None)]))


def two_layers() -> nn.Sequential:
    net = nn.Sequential(nn.Linear(4, 2, bias=False), nn.ReLU(), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 1.1, 0.9, 1.2], [4.0, 0.5, 0.1, 0.2]]))
        net[2].weight.copy_(torch.tensor([[1.5, 1.0]]))
    return net


@pytest.mark.parametrize("sequential", [False, True])
def test_sequential_wanda_scores_each_layer_on_the_inputs_of_the_already_pruned_layers_before_it(sequential):
    x = torch.ones(1, 4)
    net = two_layers()
    pruner = WandaPruner(Calibration(num_samples=1), sequential=sequential, scope="row", exclude_output=False)
    masks = pruner.prune(net, full_masks(pruner.parameters(net)), 0.5, ctx(data=[(x, None)]))
    # fc1 sees the same inputs either way: each row keeps its two largest |W| (all ||X_j|| = 1)
    assert masks["0.weight"].tolist() == [[False, True, False, True], [True, True, False, False]]
    # fc2's input norms: the dense hidden units (4.2, 4.8), or those of the pruned fc1 (1.1 + 1.2, 4 + 0.5)
    hidden = torch.relu((two_layers()[0].weight * (masks["0.weight"] if sequential else 1)) @ x.T).squeeze(1)
    assert hidden.tolist() == pytest.approx([2.3, 4.5] if sequential else [4.2, 4.8])
    by_hand = torch.tensor([[1.5, 1.0]]) * hidden  # 6.3 > 4.8 dense; 3.45 < 4.5 sequential
    assert masks["2.weight"].tolist() == [[bool(by_hand[0, 0] > by_hand[0, 1]), bool(by_hand[0, 1] > by_hand[0, 0])]]
    assert masks["2.weight"].tolist() == ([[False, True]] if sequential else [[True, False]])


def test_wanda_without_sequential_is_the_one_pass_criterion_under_the_unstructured_pruner():
    net, data = conv_net(), image_batches()
    one_pass = WandaPruner(Calibration(num_samples=32), sequential=False, scope="layer")
    plain = UnstructuredPruner(Wanda(Calibration(num_samples=32)), scope="layer")
    other = conv_net()
    a = one_pass.prune(net, full_masks(one_pass.parameters(net)), 0.6, ctx(data=data))
    b = plain.prune(other, full_masks(plain.parameters(other)), 0.6, ctx(data=data))
    assert all(torch.equal(a[n], b[n]) for n in a)


@pytest.mark.parametrize("scope", ["global", "erk", "lamp"])
def test_sequential_wanda_keeps_the_layer_counts_of_a_ranking_scope(scope):
    net, data = conv_net(), image_batches()
    pruner = WandaPruner(Calibration(num_samples=32), sequential=True, scope=scope)
    counts = {n: int((~m).sum()) for n, m in WandaPruner(Calibration(num_samples=32), sequential=False, scope=scope)
              .prune(conv_net(), full_masks(pruner.parameters(net)), 0.6, ctx(data=data)).items()}
    masks = pruner.prune(net, full_masks(pruner.parameters(net)), 0.6, ctx(data=data))
    assert {n: int((~m).sum()) for n, m in masks.items()} == counts
