"""ONNX export: dense, masked and channel-pruned models run in ONNX Runtime as in PyTorch; failures are reported."""

import sys

import onnx
import pytest
import torch
import torch_pruning as tp
from torch import nn

from prunelab.models import CifarResNet
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.masks import apply_masks
from prunelab.pruning.structural import StructuralPruner
from prunelab.training.deploy import check_onnx, onnx_session

SHAPE = (3, 32, 32)
FAST = {"batch_sizes": (1, 8), "repeats": 2, "warmup": 1}


def ctx() -> ScoreContext:
    gen = torch.Generator().manual_seed(100)
    data = [(torch.randn(4, *SHAPE, generator=gen), torch.randint(0, 10, (4,), generator=gen))]
    return ScoreContext(batches=lambda: data, loss=nn.functional.cross_entropy,
                        generator=torch.Generator().manual_seed(0))


def resnet20(prune: str | None = None) -> nn.Module:
    torch.manual_seed(0)
    model = CifarResNet(20, list(SHAPE), 10)
    for m in model.modules():  # BatchNorm statistics away from the identity, so folding them is checked too
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    if prune:
        pruner = StructuralPruner(tp.importance.GroupMagnitudeImportance(p=1), remove=prune == "removed")
        masks = pruner.prune(model, {}, 0.5, ctx())
        params = dict(model.named_parameters())
        apply_masks([params[n] for n in masks], list(masks.values()))
    return model


def first_conv_filters(path) -> int:
    graph = onnx.load(str(path)).graph
    convs = {n.input[1] for n in graph.node if n.op_type == "Conv"}
    return next(i.dims[0] for i in graph.initializer if i.name in convs)


@pytest.mark.parametrize("prune", [None, "masked", "removed"])
def test_onnx_runtime_matches_pytorch_on_a_batch(prune, tmp_path):
    model = resnet20(prune)
    outcome = check_onnx(model, SHAPE, tmp_path / "model.onnx", **FAST)
    assert outcome.error is None and outcome.matches and outcome.max_abs_diff < 1e-4
    assert set(outcome.latency_ms) == {"onnx_b1", "torch_b1", "onnx_b8", "torch_b8"}
    assert all(t > 0 for t in outcome.latency_ms.values())
    assert onnx_session(outcome.path).get_inputs()[0].shape == ["batch", *SHAPE]  # any batch size
    assert first_conv_filters(outcome.path) == (8 if prune == "removed" else 16)
    assert "matches PyTorch" in outcome.summary() and "\n" not in outcome.summary()
    assert model.training  # the caller's model is left as it was


class Svd(nn.Module):
    """A model with an operator ONNX has no function for."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return torch.linalg.svd(self.fc(x))[1]


def test_a_failed_export_is_reported_in_one_line_not_raised(tmp_path):
    outcome = check_onnx(Svd(), (4, 4), tmp_path / "svd.onnx", **FAST)
    assert not outcome.matches and outcome.path is None
    assert outcome.summary().startswith("onnx: failed (ConversionError: No ONNX function found for ")
    assert "aten._linalg_svd" in outcome.summary() and "\n" not in outcome.summary()


def test_without_onnxruntime_the_fix_is_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    outcome = check_onnx(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), (4,), tmp_path / "fc.onnx", **FAST)
    assert outcome.error.endswith("(pip install 'prunelab[export]')")
