"""N:M sparsity through a whole run: exactly n of every m weights kept at every stage and through fine-tuning."""

import torch

from tests.helpers import TINY, compose_config, kept_per_group, run


def test_nm_holds_through_every_stage_and_fine_tuning_end_to_end(tmp_path):
    cfg = compose_config(*TINY, "pruning.pattern=2:4", "pruning.exclude=[0.weight]", "schedule.targets=[0.3,0.5]",
                         "schedule.save_masks=true")
    out = run(cfg, tmp_path)
    first, second = out.results["weight_sparsity"].iloc[1:]
    assert first == second and 0.45 < first <= 0.5, "2:4 prunes half of every layer whatever the target"
    for stage, masks in torch.load(tmp_path / "masks.pt").items():
        for name, mask in masks.items():
            assert (kept_per_group(mask, 4) == 2).all(), (stage, name)
    weights = dict(out.module.model.named_parameters())
    for name, mask in out.masks.items():
        assert (kept_per_group(weights[name].detach() != 0, 4) <= 2).all(), name
