"""The GPU path's settings, run on the CPU (same code, device `cpu`): data held on the device, bf16 autocast and
channels_last."""

import math

import pytest
import torch
from torch import nn

from prunelab.errors import ConfigError
from prunelab.runs.schemas import check
from prunelab.training.module import ClassificationModule
from tests.helpers import (
    MICRO,
    assert_same_run,
    compose_config,
    run,
    structural_options,
)


def test_data_held_on_the_device_gives_the_same_run(tmp_path):
    default = run(compose_config(*MICRO, "store_dir=null", "save_model=false"), tmp_path / "a")
    held = run(compose_config(*MICRO, "store_dir=null", "save_model=false", "+dataset.device=cpu"), tmp_path / "b")
    assert_same_run(default, held)


def test_a_bf16_mixed_precision_run_trains_and_prunes(tmp_path):
    out = run(compose_config(*MICRO, "store_dir=null", "save_model=false", "trainer.precision=bf16-mixed"), tmp_path)
    assert out.results["weight_sparsity"].tolist() == [0.0, 0.5]
    assert all(math.isfinite(a) for a in out.results["val_acc"])


def test_a_channels_last_run_trains_channels_last_and_gives_the_same_curve(tmp_path, monkeypatch):
    seen = []
    step = ClassificationModule.training_step

    def watched(self, batch, batch_idx):
        convs = [m.weight for m in self.model.modules() if isinstance(m, nn.Conv2d)]
        seen.append(all(t.is_contiguous(memory_format=torch.channels_last) for t in [*convs, self.inputs(batch[0])]))
        return step(self, batch, batch_idx)

    monkeypatch.setattr(ClassificationModule, "training_step", watched)
    conv = [*MICRO, "model=digits_cnn", "dataset.input_shape=[3,8,8]", "store_dir=null", "save_model=false"]
    default = run(compose_config(*conv), tmp_path / "a")
    assert seen and not any(seen)
    seen.clear()
    nhwc = run(compose_config(*conv, "channels_last=true"), tmp_path / "b")
    assert seen and all(seen)
    for column in ("val_acc", "test_acc", "weight_sparsity"):
        assert nhwc.results[column].tolist() == pytest.approx(default.results[column].tolist(), abs=1e-3)
    weights = dict(nhwc.module.model.named_parameters())
    assert all(torch.equal(default.masks[n], m) for n, m in nhwc.masks.items())
    assert all(not weights[n][~m].any() for n, m in nhwc.masks.items())


def test_layers_that_surgery_replaces_are_channels_last_too(tmp_path):
    pruning = structural_options()[0]
    out = run(compose_config(*MICRO, "model=digits_cnn", "dataset.input_shape=[3,8,8]", "store_dir=null",
                             "save_model=false", f"pruning={pruning}", "channels_last=true"), tmp_path)
    convs = [m.weight for m in out.module.model.modules() if isinstance(m, nn.Conv2d)]
    assert out.results["param_sparsity"].tolist()[-1] > 0
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)


def test_channels_last_must_be_true_or_false():
    with pytest.raises(ConfigError, match="channels_last"):
        check(compose_config(*MICRO, "channels_last=nhwc"))
