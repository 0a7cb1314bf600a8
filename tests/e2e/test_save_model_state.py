"""`save_model=state` writes the final model's state file, which loads, and no torch.export program."""

import torch

from prunelab.paths import RunPaths
from prunelab.training.export import load_model
from tests.helpers import MICRO, compose_config, run


def test_save_model_state_writes_the_state_file_only(tmp_path):
    out = run(compose_config(*MICRO, "save_model=state", "store_dir=null"), tmp_path)
    paths = RunPaths(tmp_path)
    assert paths.model_state.is_file() and not paths.model_program.exists()
    model = load_model(paths.model_state)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), out.module.model.state_dict().values()))
