
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from prunelab.errors import ConfigError
from prunelab.models import (
    MLP,
    VGG16BN,
    CifarResNet,
    DigitsCNN,
    LeNet5,
    torchvision_model,
)
from prunelab.models.shapes import chw
from prunelab.training.lr import step
from tests.helpers import CONF, language_models

# The classifiers (tests/unit/test_causal_lm.py builds the language models).
MODEL_CONFIGS = [p for p in sorted((CONF / "model").glob("*.yaml")) if p.stem not in language_models()]
# Input shape each model is meant for; anything not listed takes CIFAR-sized images.
INPUT_SHAPES = {"lenet_300_100": [1, 8, 8], "digits_cnn": [1, 8, 8], "lenet5": [1, 28, 28]}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def last_linear(model: nn.Module) -> nn.Linear:
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1]


@pytest.mark.parametrize("path", MODEL_CONFIGS, ids=lambda p: p.stem)
def test_model_config_builds_and_trains(path):
    num_classes = 7
    node = OmegaConf.load(path)
    shape = INPUT_SHAPES.get(node.name, [3, 32, 32])
    cfg = OmegaConf.create({"dataset": {"input_shape": shape, "num_classes": num_classes}, "model": node})
    OmegaConf.resolve(cfg)
    cfg.model.pop("name")
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, num_classes)
    out.sum().backward()
    assert last_linear(model).out_features == num_classes
    grad = last_linear(model).weight.grad
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_lenet_300_100_param_count():
    assert n_params(MLP(input_shape=[1, 28, 28], num_classes=10)) == 266_610


def test_lenet5_caffe_param_count():
    assert n_params(LeNet5(input_shape=[1, 28, 28], num_classes=10)) == 431_080


def test_resnet20_param_count():
    assert 260_000 <= n_params(CifarResNet(depth=20, input_shape=[3, 32, 32], num_classes=10)) <= 300_000


def test_resnet_rejects_bad_depth():
    with pytest.raises(ConfigError, match="model.depth"):
        CifarResNet(depth=21, input_shape=[3, 32, 32], num_classes=10)


@pytest.mark.parametrize("build, shape", [(LeNet5, [1, 8, 8]), (VGG16BN, [3, 16, 16])])
def test_too_small_input_is_a_config_error(build, shape):
    with pytest.raises(ConfigError, match=f"^model: .*got {shape[1]}x{shape[2]}"):
        build(input_shape=shape, num_classes=10)


@pytest.mark.parametrize("shape", [[1, 4, 4], [3, 5, 7], [1, 28, 28]])
def test_digits_cnn_takes_any_input_of_at_least_4x4(shape):
    assert DigitsCNN(input_shape=shape, num_classes=10)(torch.randn(2, *shape)).shape == (2, 10)


def test_models_are_deterministic_given_the_seed():
    states = []
    for _ in range(2):
        torch.manual_seed(0)
        states.append(DigitsCNN(input_shape=[1, 8, 8], num_classes=10).state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_input_shape_must_be_chw():
    with pytest.raises(ConfigError, match="dataset.input_shape"):
        chw([784])


def test_torchvision_rejects_one_channel_input():
    with pytest.raises(ConfigError, match="^dataset: .*3-channel"):
        torchvision_model(arch="resnet18", input_shape=[1, 28, 28], num_classes=10)


def test_torchvision_rejects_unknown_arch_and_suggests_names():
    with pytest.raises(ConfigError, match="^model.arch: .*resnet18") as err:
        torchvision_model(arch="resnet_18", input_shape=[3, 32, 32], num_classes=10)
    assert "resnet_18" in err.value.problem


@pytest.mark.parametrize("build", [lambda init: MLP([1, 28, 28], 10, init=init),
                                   lambda init: LeNet5([1, 28, 28], 10, init=init)])
def test_variance_scaling_draws_a_truncated_normal_of_variance_one_over_fan_in_and_zero_biases(build):
    torch.manual_seed(0)
    default = build("default")
    torch.manual_seed(0)
    assert all(torch.equal(a, b) for a, b in zip(default.state_dict().values(), build("default").state_dict().values()))
    torch.manual_seed(0)
    model = build("variance_scaling")
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            fan_in = m.weight[0].numel()
            bound = 2 * (1 / fan_in) ** 0.5 / 0.87962566103423978  # two stds of the untruncated normal
            assert m.weight.abs().max() <= bound and torch.equal(m.bias, torch.zeros_like(m.bias))
            if m.weight.numel() > 10_000:  # enough draws to see the variance
                assert m.weight.var().item() == pytest.approx(1 / fan_in, rel=0.05)
    with pytest.raises(ConfigError, match="model.init"):
        build("glorot")


def test_the_step_schedule_divides_the_rate_by_ten_after_every_tenth_of_the_stage():
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    schedule, rates = step(optimizer, epochs=463), []
    for _ in range(140):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    # 463 epochs of 540 steps are SNIP's 250k iterations; its decays at 25k and 50k fall before epochs 47 and 93
    assert rates[46] == pytest.approx(0.1) and rates[47] == pytest.approx(0.01) and rates[92] == pytest.approx(0.01)
    assert rates[93] == pytest.approx(0.001)
