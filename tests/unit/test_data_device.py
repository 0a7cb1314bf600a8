"""Data sets held on a device (`dataset.device`): the same batches, cut where the data is; bad settings refused."""

import pytest
import torch

from prunelab.data.tensors import NormalisedBatches, TensorBatches
from prunelab.data.synthetic import SyntheticDataModule
from prunelab.errors import ConfigError


def synthetic(**kwargs) -> SyntheticDataModule:
    dm = SyntheticDataModule(input_shape=[3, 8, 8], num_classes=4, num_samples=96, num_test=32, batch_size=16,
                             **kwargs)
    dm.setup("fit")
    return dm


def test_data_on_the_device_serves_the_same_batches_from_there():
    held, default = synthetic(device="cpu"), synthetic()
    for a, b in zip(held.train_dataloader(), default.train_dataloader()):
        assert a[0].device.type == "cpu" and torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert all(d.x.device.type == "cpu" for d in held.splits.values())


def test_batches_are_cut_on_the_device_the_data_is_on():
    x, y = torch.arange(24.0).view(6, 1, 2, 2), torch.arange(6)
    data = NormalisedBatches(x.to(torch.uint8), y, mean=[0.5], std=[0.25]).to(torch.device("cpu"))
    bx, by = data[[4, 1]]
    assert by.tolist() == [4, 1] and bx.shape == (2, 1, 2, 2) and data.scale.device == bx.device
    assert TensorBatches(x, y).to(torch.device("meta")).x.is_meta


@pytest.mark.parametrize(("settings", "setting"), [({"device": "toaster"}, "dataset.device"),
                                                   ({"device": "cuda", "num_workers": 2}, "dataset.num_workers")])
def test_bad_device_settings_are_config_errors(settings, setting):
    dm = SyntheticDataModule(input_shape=[3, 8, 8], num_classes=4, **settings)
    with pytest.raises(ConfigError, match=setting):
        dm.check()
