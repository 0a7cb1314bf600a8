"""The GPU path's settings, run on the CPU (same code, device `cpu`): data held on the device and bf16 autocast."""

import math

from tests.helpers import MICRO, assert_same_run, compose_config, run


def test_data_held_on_the_device_gives_the_same_run(tmp_path):
    default = run(compose_config(*MICRO, "store_dir=null", "save_model=false"), tmp_path / "a")
    held = run(compose_config(*MICRO, "store_dir=null", "save_model=false", "+dataset.device=cpu"), tmp_path / "b")
    assert_same_run(default, held)


def test_a_bf16_mixed_precision_run_trains_and_prunes(tmp_path):
    out = run(compose_config(*MICRO, "store_dir=null", "save_model=false", "+trainer.precision=bf16-mixed"), tmp_path)
    assert out.results["sparsity"].tolist() == [0.0, 0.5]
    assert all(math.isfinite(a) for a in out.results["val_acc"])
