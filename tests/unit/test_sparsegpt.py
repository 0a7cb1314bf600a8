"""SparseGPT: reconstruction error against magnitude and Wanda on a trained layer, exact zeros, counts, patterns."""

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from prunelab.errors import ConfigError
from prunelab.pruning import Magnitude, UnstructuredPruner
from prunelab.pruning.calibration import Calibration
from prunelab.pruning.masks import full_masks, sparsity
from prunelab.pruning.patterns import reduction_view
from prunelab.pruning.sparsegpt import SparseGPT
from prunelab.pruning.wanda import Wanda
from tests.helpers import conv_net, ctx, image_batches


@pytest.fixture(scope="module")
def trained():
    """An MLP trained on sklearn's digits (real images, 64 features) and its training batches."""
    digits = load_digits()
    x, y = torch.tensor(digits.data, dtype=torch.float32) / 16, torch.tensor(digits.target)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(200):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    return net, list(zip(x.split(100), y.split(100)))


def copy_of(net):
    out = type(net)(*[type(m)(m.in_features, m.out_features) if isinstance(m, nn.Linear) else m for m in net])
    out.load_state_dict(net.state_dict())
    return out


@pytest.mark.parametrize("target, pattern", [(0.5, "unstructured"), (0.7, "unstructured"), (0.5, "2:4")])
def test_sparsegpt_reconstructs_a_trained_layer_better_than_magnitude_and_wanda(trained, target, pattern):
    net, data = trained
    calibration = Calibration(num_samples=128)
    x = torch.cat(calibration.inputs(ctx(data=data), torch.device("cpu")))
    dense = net[0].weight.detach().clone()
    errors = {}
    pruners = {"magnitude": UnstructuredPruner(Magnitude(), scope="layer", pattern=pattern),
               "wanda": UnstructuredPruner(Wanda(calibration), scope="row", pattern=pattern),
               "sparsegpt": SparseGPT(calibration, pattern=pattern)}
    for name, pruner in pruners.items():
        model = copy_of(net)
        masks = pruner.prune(model, full_masks(pruner.parameters(model)), target, ctx(data=data))
        w = model[0].weight.detach()
        assert int((~masks["0.weight"]).sum()) == round(target * w.numel()), name
        assert (w[~masks["0.weight"]] == 0).all(), f"{name}: pruned weights must be exactly zero"
        errors[name] = float(torch.linalg.norm(x @ dense.T - x @ w.T))
    assert errors["sparsegpt"] < errors["wanda"] and errors["sparsegpt"] < errors["magnitude"], errors


def test_with_an_identity_hessian_sparsegpt_is_magnitude_and_updates_nothing():
    x = torch.eye(4) * 2  # H = X^T X / n = I: no weight can compensate for another
    dense = torch.tensor([[1.0, -4.0, 2.0, 3.0], [0.5, 0.1, -6.0, 1.0], [2.0, 2.5, -0.2, 0.3]])
    lin2 = nn.Linear(4, 3, bias=False)
    with torch.no_grad():
        lin2.weight.copy_(dense)
    pruner = SparseGPT(Calibration(num_samples=4), exclude_output=False)
    masks = pruner.prune(nn.Sequential(lin2), {"0.weight": torch.ones(3, 4, dtype=torch.bool)}, 0.5, ctx(data=[(x, None)]))
    expected = dense.abs() >= dense.abs().flatten().kthvalue(7).values
    assert torch.equal(masks["0.weight"], expected)
    torch.testing.assert_close(lin2.weight.detach(), dense * expected)


@pytest.mark.parametrize("pattern", ["unstructured", "2:4"])
def test_sparsegpt_on_convs_keeps_counts_and_never_revives(pattern):
    net, data = conv_net(), image_batches()
    pruner = SparseGPT(Calibration(num_samples=32), pattern=pattern, block_size=16)
    params = pruner.parameters(net)
    first = pruner.prune(net, full_masks(params), 0.5, ctx(data=data))
    second = pruner.prune(net, first, 0.5 if pattern == "2:4" else 0.8, ctx(data=data))
    assert all(not (second[n] & ~first[n]).any() for n in first)
    for name, mask in second.items():
        assert (params[name][~mask] == 0).all(), name
        if pattern == "2:4":
            v = reduction_view(mask)
            assert (v.reshape(*v.shape[:2], -1, 4).sum(-1) == 2).all(), name
        else:
            assert int((~mask).sum()) == round(0.8 * mask.numel()), name
    assert sparsity(second) == pytest.approx(0.5 if pattern == "2:4" else 0.8, abs=1e-3)


@pytest.mark.parametrize("kwargs, setting", [
    ({"pattern": "block"}, "pruning.pattern"),
    ({"pattern": "2:4", "block_size": 6}, "pruning.block_size"),
    ({"dampening": 0.0}, "pruning.dampening"),
])
def test_bad_sparsegpt_settings_raise_config_errors(kwargs, setting):
    with pytest.raises(ConfigError, match=setting):
        SparseGPT(Calibration(), **kwargs)
