"""The committed dense CIFAR-10 ResNet-20 (experiments/weights/, made by `prunelab +experiment=cifar_dense`):
it loads through `dense_checkpoint=`, passes the check against its record, and keeps its accuracy on a slice
of the test split."""

import json

import pytest

from tests.helpers import ROOT, SHARED_DATA, compose_config, prepare

WEIGHTS = ROOT / "experiments" / "weights" / "cifar10_resnet20"
CIFAR = SHARED_DATA / "CIFAR-10-images"
SLICE = 1000  # test images: one is 0.1 point


@pytest.mark.skipif(not (CIFAR / "test").is_dir(), reason="CIFAR-10's JPEG folders are not in ../shared/data")
def test_the_committed_dense_resnet20_keeps_its_accuracy_on_a_slice_of_the_test_split(tmp_path):
    recorded = json.loads((WEIGHTS / "results.json").read_text())
    cfg = compose_config("+experiment=cifar_dense", f"dense_checkpoint={WEIGHTS / 'dense.pt'}",
                         "schedule.pretrain_epochs=1", f"dataset.limit={SLICE}", f"dataset.cache_dir={tmp_path}",
                         f"dataset.root={CIFAR / 'train'}", f"dataset.test_root={CIFAR / 'test'}", "logger=none",
                         "store_dir=null")
    # builds the run without training it: checks the weights against protocol.json and settings.json, loads them
    parts = prepare(cfg, tmp_path)
    parts.datamodule.prepare_data()
    parts.datamodule.setup("test")
    accuracy = parts.module.evaluate(parts.datamodule.test_dataloader())["acc"]
    # the whole test split's accuracy, within 2.5 points: a seeded 1000-image slice's spread is about 1 point
    assert accuracy == pytest.approx(recorded["test_acc"], abs=0.025)
