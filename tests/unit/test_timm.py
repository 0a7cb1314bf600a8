"""timm models: built by name, loaded from a local state_dict, and structurally pruned by torch-pruning."""

import sys

import pytest
import timm
import torch
import torch_pruning as tp
from timm.models.vision_transformer import Attention
from torch import nn

from prunelab.errors import ConfigError
from prunelab.models import timm_model
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.structural import StructuralPruner
from prunelab.training.meter import layer_costs

SHAPE = (3, 32, 32)
SMALLEST = ["resnet18", "vit_tiny_patch16_224", "convnext_atto"]


def ctx() -> ScoreContext:
    gen = torch.Generator().manual_seed(100)
    data = [(torch.randn(4, *SHAPE, generator=gen), torch.randint(0, 10, (4,), generator=gen)) for _ in range(2)]
    return ScoreContext(batches=lambda: data, loss=nn.functional.cross_entropy,
                        generator=torch.Generator().manual_seed(0))


def macs(model) -> int:
    return sum(c.macs for c in layer_costs(model, torch.zeros(1, *SHAPE)).values())


def heads(model) -> list[tuple[int, int]]:
    return [(m.num_heads, m.head_dim) for m in model.modules() if isinstance(m, Attention)]


@pytest.mark.parametrize("arch", SMALLEST)
def test_half_the_channels_removed_keeps_the_output_and_halves_macs(arch):
    torch.manual_seed(0)
    model = timm_model(arch, SHAPE, 10)
    dense_macs, dense_heads = macs(model), heads(model)
    StructuralPruner(tp.importance.GroupMagnitudeImportance(p=1)).prune(model, {}, 0.5, ctx())
    out = model(torch.randn(2, *SHAPE))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    out.sum().backward()
    assert dense_macs / macs(model) >= 2.0
    if dense_heads:  # whole heads go, head size stays
        pairs = zip(heads(model), dense_heads, strict=True)
        assert all(h < dense_h and d == dense_d for (h, d), (dense_h, dense_d) in pairs)


def test_a_transformer_takes_the_dataset_input_size():
    model = timm_model("vit_tiny_patch16_224", [3, 48, 32], 7)
    assert model(torch.randn(2, 3, 48, 32)).shape == (2, 7)


def save(arch: str, path, num_classes: int = 1000) -> dict:
    torch.manual_seed(1)
    state = timm.create_model(arch, num_classes=num_classes).state_dict()
    torch.save(state, path)
    return state


def test_a_checkpoint_loads_whole_when_the_classes_match(tmp_path):
    saved = save("resnet18", tmp_path / "r18.pth", num_classes=10)
    model = timm_model("resnet18", SHAPE, 10, checkpoint_path=str(tmp_path / "r18.pth"))
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())


def test_other_classes_keep_the_backbone_and_get_a_new_head(tmp_path, caplog):
    saved = save("vit_tiny_patch16_224", tmp_path / "vit.pth")
    with caplog.at_level("INFO", logger="prunelab.models.timm_zoo"):
        model = timm_model("vit_tiny_patch16_224", SHAPE, 10, checkpoint_path=str(tmp_path / "vit.pth"))
    state = model.state_dict()
    assert state["head.weight"].shape == (10, 192)
    assert state["pos_embed"].shape == (1, 1 + 2 * 2, 192)  # resized from 14 x 14 patches to 2 x 2
    assert all(torch.equal(v, saved[k]) for k, v in state.items() if not k.startswith(("head.", "pos_embed")))
    assert "new 10-class head" in caplog.text


def test_a_checkpoint_of_another_architecture_names_both(tmp_path):
    save("resnet34", tmp_path / "r34.pth")
    with pytest.raises(ConfigError, match=r"^model.checkpoint_path: .*r34.pth does not hold the weights of timm's "
                                          r"resnet18 .*\. Fix: .*timm.create_model\('resnet18'\)"):
        timm_model("resnet18", SHAPE, 10, checkpoint_path=str(tmp_path / "r34.pth"))


def test_a_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(ConfigError, match=f"model.checkpoint_path: {tmp_path / 'none.pth'} is not a file"):
        timm_model("resnet18", SHAPE, 10, checkpoint_path=str(tmp_path / "none.pth"))


def test_an_unknown_name_suggests_close_ones():
    with pytest.raises(ConfigError, match="model.arch: unknown timm model 'resnet_18'.*resnet18"):
        timm_model("resnet_18", SHAPE, 10)


def test_without_timm_installed_the_fix_is_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm now raises ImportError
    with pytest.raises(ConfigError, match=r"timm is not installed\. Fix: pip install 'prunelab\[timm\]'"):
        timm_model("resnet18", SHAPE, 10)
