"""Structural pruning: real channel removal on many architectures, masks that match it, targets, saving."""

import copy

import pytest
import torch
import torch_pruning as tp
import torchvision
from torch import nn

from prunelab.errors import ConfigError
from prunelab.models import VGG16BN, CifarResNet, DigitsCNN, LeNet5
from prunelab.models.attention import SelfAttention
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.gradient import summed_gradients
from prunelab.pruning.structural import StructuralPruner
from prunelab.training.meter import layer_costs
from tests.helpers import TINY, compose_config, prepare, widths


def l1(**kwargs) -> StructuralPruner:
    return StructuralPruner(tp.importance.GroupMagnitudeImportance(p=1), **kwargs)


def ctx(shape, seed: int = 0, n: int = 3) -> ScoreContext:
    gen = torch.Generator().manual_seed(100 + seed)
    data = [(torch.randn(4, *shape, generator=gen), torch.randint(0, 10, (4,), generator=gen)) for _ in range(n)]
    return ScoreContext(batches=lambda: data, loss=nn.functional.cross_entropy,
                        generator=torch.Generator().manual_seed(seed))


def macs(model, shape) -> int:
    return sum(c.macs for c in layer_costs(model, torch.zeros(1, *shape)).values())


def tiny_vit():
    return torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=64,
                                                mlp_dim=128, num_classes=10)


def tv(arch):
    return lambda: torchvision.models.get_model(arch, weights=None, num_classes=10)


MODELS = {
    "lenet5": (lambda: LeNet5([1, 28, 28], 10), (1, 28, 28)),
    "resnet20": (lambda: CifarResNet(20, [3, 32, 32], 10), (3, 32, 32)),
    "resnet18": (tv("resnet18"), (3, 32, 32)),
    "mobilenet_v2": (tv("mobilenet_v2"), (3, 32, 32)),
    "tiny_vit": (tiny_vit, (3, 32, 32)),
}
SLOW_MODELS = {
    "resnet56": (lambda: CifarResNet(56, [3, 32, 32], 10), (3, 32, 32)),
    "vgg16_bn": (lambda: VGG16BN([3, 32, 32], 10), (3, 32, 32)),
    "efficientnet_b0": (tv("efficientnet_b0"), (3, 64, 64)),
    "densenet121": (tv("densenet121"), (3, 64, 64)),
    "regnet_x_400mf": (tv("regnet_x_400mf"), (3, 64, 64)),
    "convnext_tiny": (tv("convnext_tiny"), (3, 64, 64)),
    "vit_b_16": (tv("vit_b_16"), (3, 224, 224)),
}


def heads(model) -> list[tuple[int, int]]:
    return [(m.num_heads, m.head_dim) for m in model.modules() if isinstance(m, (SelfAttention, nn.MultiheadAttention))]


def check_half_channels(name, build, shape):
    torch.manual_seed(0)
    model = build()
    x = torch.randn(2, *shape)
    dense_heads, dense_macs = heads(model), macs(model, shape)
    l1().prune(model, {}, 0.5, ctx(shape))
    out = model(x)  # training mode: BatchNorm sees the new widths too
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    out.sum().backward()
    assert dense_macs / macs(model, shape) >= 2.0
    if dense_heads:  # whole heads go, head size stays
        assert [h for h, _ in heads(model)] == [h // 2 for h, _ in dense_heads]
        assert [d for _, d in heads(model)] == [d for _, d in dense_heads]


@pytest.mark.parametrize("name", MODELS)
def test_half_the_channels_removed_keeps_the_output_and_halves_macs(name):
    check_half_channels(name, *MODELS[name])


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW_MODELS)
def test_half_the_channels_removed_keeps_the_output_and_halves_macs_slow(name):
    check_half_channels(name, *SLOW_MODELS[name])


def randomise_batchnorm(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.bias.data.normal_()


@pytest.mark.parametrize("name", ["resnet20", pytest.param("mobilenet_v2", marks=pytest.mark.slow)])
def test_masks_zero_exactly_what_removal_removes(name):
    build, shape = MODELS[name]
    torch.manual_seed(0)
    removed = build()
    randomise_batchnorm(removed)
    masked = copy.deepcopy(removed)
    l1().prune(removed, {}, 0.5, ctx(shape))
    masks = l1(remove=False).prune(masked, {}, 0.5, ctx(shape))  # zeroes what its masks prune, as removal removes it
    params = dict(masked.named_parameters())
    assert all(params[n].shape == m.shape for n, m in masks.items())
    first = next(n for n, m in masked.named_modules() if isinstance(m, nn.Conv2d))
    rows = params[f"{first}.weight"].flatten(1)
    zero_rows = (rows == 0).all(1)
    assert zero_rows.sum() == rows.shape[0] // 2 and (rows[~zero_rows] != 0).all()
    x = torch.randn(3, *shape)
    torch.testing.assert_close(masked.eval()(x), removed.eval()(x), atol=1e-5, rtol=1e-4)


def kept_rows(model, masks) -> list[int]:
    return [int(masks[f"{n}.weight"].flatten(1).any(1).sum()) if f"{n}.weight" in masks else m.weight.shape[0]
            for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def test_iterative_targets_are_fractions_of_the_dense_channels_and_masks_never_revive():
    torch.manual_seed(0)
    removed = DigitsCNN([1, 8, 8], 10)
    masked = copy.deepcopy(removed)
    removal, masking = l1(), l1(remove=False)
    masks = {}
    for stage, target in enumerate([0.5, 0.8], start=1):
        removal.prune(removed, {}, target, ctx((1, 8, 8), stage))
        new = masking.prune(masked, masks, target, ctx((1, 8, 8), stage))
        assert all(not (new[n] & ~m).any() for n, m in masks.items()), "a masked weight came back"
        masks = new
        expected = [int(c * (1 - target)) for c in (32, 64, 64, 128)] + [10]
        assert widths(removed) == kept_rows(masked, masks) == expected


def test_global_scope_honours_max_layer_ratio_and_round_to():
    torch.manual_seed(0)
    model = CifarResNet(20, [3, 32, 32], 10)
    dense = widths(model)
    pruner = l1(scope="global", max_layer_ratio=0.6, round_to=4)
    for stage, target in enumerate([0.5, 0.9], start=1):  # 0.9 is capped at 0.6
        pruner.prune(model, {}, target, ctx((3, 32, 32), stage))
        assert all(w % 4 == 0 and w >= 0.4 * d for w, d in zip(widths(model)[:-1], dense[:-1]))
    kept = sum(widths(model)[:-1]) / sum(dense[:-1])
    assert 0.4 <= kept < 0.5  # it pruned past the first target, up to the cap
    assert widths(model)[-1] == 10


def test_exclude_keeps_matching_layers_whole():
    torch.manual_seed(0)
    model = DigitsCNN([1, 8, 8], 10)
    l1(exclude=["0.*"]).prune(model, {}, 0.5, ctx((1, 8, 8)))
    assert widths(model) == [32, 32, 32, 64, 10]


def test_random_channels_follow_the_seed():
    chosen = []
    for seed in (1, 1, 2):
        torch.manual_seed(0)
        model = DigitsCNN([1, 8, 8], 10)
        StructuralPruner(tp.importance.RandomImportance()).prune(model, {}, 0.5, ctx((1, 8, 8), seed))
        chosen.append(model[0].weight.detach().clone())
    assert torch.equal(chosen[0], chosen[1]) and not torch.equal(chosen[0], chosen[2])


def test_gradients_are_summed_over_num_batches():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 10))
    c = ctx((4,), n=5)
    grads = summed_gradients(model, list(model.parameters()), c, 3)
    expected = torch.zeros_like(model[1].weight)
    for x, y in c.batches()[:3]:
        expected += torch.autograd.grad(c.loss(model(x), y), model[1].weight)[0]
    torch.testing.assert_close(grads[0], expected)


def test_bn_l1_adds_the_sign_of_the_scales_to_their_gradients():
    bn = nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([0.5, -2.0, 1.0]))
    bn.weight.grad = torch.zeros(3)
    StructuralPruner(tp.importance.BNScaleImportance(), bn_l1=0.1).dense_penalty(nn.Sequential(bn))
    torch.testing.assert_close(bn.weight.grad, torch.tensor([0.1, -0.1, 0.1]))


@pytest.mark.parametrize("overrides, setting", [
    (["pruning=taylor_channel", "pruning.num_batches=0"], "pruning.num_batches"),
    (["pruning=bn_slimming", "model=lenet_300_100"], "pruning: MLP has no BatchNorm"),
    (["pruning=l1_filter", "pruning.exclude=[*]"], "pruning.exclude"),
    (["pruning=l1_filter", "pruning.max_layer_ratio=0"], "pruning.max_layer_ratio"),
    (["pruning=l1_filter", "pruning.scope=blockwise"], "pruning.scope"),
    (["pruning=l1_filter", "metrics.latency_repeats=0"], "metrics.latency_repeats"),
])
def test_bad_structural_settings_fail_before_training(overrides, setting, tmp_path):
    with pytest.raises(ConfigError, match=setting):
        prepare(compose_config(*TINY, *overrides), tmp_path)
