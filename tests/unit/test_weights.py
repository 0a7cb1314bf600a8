"""Pretrained torchvision weights come from a planted torch.hub cache; nothing is downloaded."""

import logging

import pytest
import torch
import torchvision
from torchvision.models import ResNet18_Weights

from prunelab.errors import ConfigError
from prunelab.models import torchvision_model
from prunelab.models.weights import cached_file


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


def plant(arch: str, weights, num_classes: int = 1000) -> dict:
    """Save a randomly initialised `arch` where torch.hub caches `weights`; returns its state_dict."""
    torch.manual_seed(1)
    state = torchvision.models.get_model(arch, weights=None, num_classes=num_classes).state_dict()
    path = cached_file(weights)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def test_cached_file_is_torch_hubs_checkpoint_path(torch_home):
    assert cached_file(ResNet18_Weights.IMAGENET1K_V1) == torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"


def test_planted_weights_load_as_they_are_when_the_classes_match(torch_home):
    planted = plant("resnet18", ResNet18_Weights.IMAGENET1K_V1)
    model = torchvision_model("resnet18", [3, 32, 32], 1000, weights="DEFAULT")
    assert all(torch.equal(v, planted[k]) for k, v in model.state_dict().items())


def test_other_classes_keep_the_backbone_and_get_a_new_head(torch_home, caplog):
    planted = plant("resnet18", ResNet18_Weights.IMAGENET1K_V1)
    with caplog.at_level(logging.INFO, logger="prunelab.models.weights"):
        model = torchvision_model("resnet18", [3, 32, 32], 10, weights="ResNet18_Weights.IMAGENET1K_V1")
    state = model.state_dict()
    assert all(torch.equal(v, planted[k]) for k, v in state.items() if not k.startswith("fc."))
    assert state["fc.weight"].shape == (10, 512) and state["fc.bias"].shape == (10,)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert "new 10-class head 'fc'" in caplog.text


def test_a_convolutional_head_is_replaced_too(torch_home):
    plant("squeezenet1_0", torchvision.models.SqueezeNet1_0_Weights.IMAGENET1K_V1)
    model = torchvision_model("squeezenet1_0", [3, 64, 64], 10, weights="DEFAULT")
    assert model.classifier[1].out_channels == 10 and model(torch.randn(2, 3, 64, 64)).shape == (2, 10)


def test_missing_file_offline_is_one_line_naming_the_file(torch_home):
    with pytest.raises(ConfigError) as err:
        torchvision_model("resnet18", [3, 32, 32], 10, weights="IMAGENET1K_V1")
    message = str(err.value)
    assert "\n" not in message and message.startswith("model.weights:")
    assert str(torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in message
    assert "model.download=true" in message


def test_weights_of_another_architecture_name_both(torch_home):
    with pytest.raises(ConfigError, match=r"ResNet50_Weights.IMAGENET1K_V1 are weights for resnet50, not for "
                                          r"model.arch=resnet18"):
        torchvision_model("resnet18", [3, 32, 32], 10, weights="ResNet50_Weights.IMAGENET1K_V1")


def test_unknown_weights_list_the_options(torch_home):
    with pytest.raises(ConfigError, match="no weights 'IMAGENET22K'.*ResNet18_Weights.IMAGENET1K_V1"):
        torchvision_model("resnet18", [3, 32, 32], 10, weights="IMAGENET22K")


def test_a_cached_file_of_another_architecture_is_named(torch_home):
    state = torchvision.models.resnet50(weights=None).state_dict()
    path = cached_file(ResNet18_Weights.IMAGENET1K_V1)
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    with pytest.raises(ConfigError, match=f"{path} does not hold ResNet18_Weights.IMAGENET1K_V1 for resnet18"):
        torchvision_model("resnet18", [3, 32, 32], 10, weights="DEFAULT")
