"""FPGM, LAMP and Hessian (OBD) channel importances: built from their configs, run on the structural model list."""

import pytest
import torch
import torchvision
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from prunelab.models import CifarResNet, LeNet5
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.gradient import summed_gradients
from tests.helpers import CONF

METHODS = ["fpgm", "lamp_channel", "hessian_channel"]
MODELS = {
    "lenet5": (lambda: LeNet5([1, 28, 28], 10), (1, 28, 28)),
    "resnet20": (lambda: CifarResNet(20, [3, 32, 32], 10), (3, 32, 32)),
    "resnet18": (lambda: torchvision.models.resnet18(num_classes=10), (3, 32, 32)),
    "mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(num_classes=10), (3, 32, 32)),
    "tiny_vit": (lambda: torchvision.models.VisionTransformer(32, 8, 2, 4, 64, 128, num_classes=10), (3, 32, 32)),
}


def ctx(shape) -> ScoreContext:
    gen = torch.Generator().manual_seed(0)
    data = [(torch.randn(4, *shape, generator=gen), torch.randint(0, 10, (4,), generator=gen)) for _ in range(2)]
    return ScoreContext(batches=lambda: data, loss=nn.functional.cross_entropy, generator=gen)


def pruner(method: str):
    cfg = OmegaConf.load(CONF / "pruning" / f"{method}.yaml")
    return instantiate({k: v for k, v in cfg.items() if k not in ("name", "family")})


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("method", METHODS)
def test_new_importances_remove_channels_and_keep_a_working_model(method, model):
    build, shape = MODELS[model]
    torch.manual_seed(0)
    net = build()
    dense = sum(p.numel() for p in net.parameters())
    pruner(method).prune(net, {}, 0.5, ctx(shape))
    out = net(torch.randn(2, *shape))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert sum(p.numel() for p in net.parameters()) < 0.75 * dense


def test_hessian_importance_reads_the_mean_squared_per_sample_gradient():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 10))
    data = ctx((3,))
    grads = summed_gradients(net, list(net.parameters()), data, 1, squared=True)
    x, y = data.batches()[0]
    by_hand = torch.zeros_like(net[0].weight)
    for xi, yi in zip(x, y):
        g = torch.autograd.grad(nn.functional.cross_entropy(net(xi[None]), yi[None]), net[0].weight)[0]
        by_hand += g**2 / len(x)
    torch.testing.assert_close(grads[0], by_hand)


def kept_filters(net: nn.Module, dense_bias: torch.Tensor) -> set[int]:
    """Which of conv2's dense filters the pruned model still holds, told apart by their biases (conv1 lost input
    channels of every filter too)."""
    return {i for i, b in enumerate(dense_bias.tolist()) if b in net[3].bias.tolist()}


@pytest.mark.parametrize("method", ["l1_filter", "l1_group"])
def test_l1_filter_ranks_a_filter_by_its_own_weights_and_l1_group_by_its_group(method):
    torch.manual_seed(0)
    net = LeNet5([1, 28, 28], 10)
    conv2, bias, fc1 = (t.detach().clone() for t in (net[3].weight, net[3].bias, net[7].weight))
    own = conv2.abs().sum((1, 2, 3))  # Li et al. 2017: s_j = sum of |F_j|
    # the group: conv2's filter j and fc1's 16 input columns of channel j (50 x 4 x 4 flattened), their L1 means
    group = (own + fc1.abs().view(500, 50, 16).sum((0, 2))) / 2
    by_hand = own if method == "l1_filter" else group
    pruner(method).prune(net, {}, 0.5, ctx((1, 28, 28)))
    assert net[3].out_channels == 25
    assert kept_filters(net, bias) == set(by_hand.topk(25).indices.tolist())
