"""AGP, rewinding, per-layer rates and retraining LR: the formula, exact restores, exact counts."""

import pandas as pd
import pytest
import pytorch_lightning as pl
import torch

from prunelab.config import build
from prunelab.errors import ConfigError
from prunelab.pruning.masks import sparsity
from prunelab.training.callback import PruningCallback
from prunelab.training.rewind import fresh_init
from tests.helpers import TINY, compose_config, prepare, run


class Recorder(pl.Callback):
    """Weights at the start, after `step` optimizer steps, and at the first epoch of every stage."""

    def __init__(self, pruning, step: int = 0):
        self.pruning, self.step = pruning, step
        self.at_step, self.stage_starts, self.sparsities, self.lrs = None, {}, [], {}

    def _weights(self, module):
        return {n: p.detach().clone() for n, p in module.model.state_dict().items()}

    def on_train_epoch_start(self, trainer, module):
        if trainer.global_step == self.step and self.at_step is None:
            self.at_step = self._weights(module)
        stage = self.pruning.state.stage
        if stage not in self.stage_starts:
            self.stage_starts[stage] = (self._weights(module), {n: m.clone() for n, m in self.pruning.masks.items()}
                                        if self.pruning.masks else None)
            self.lrs[stage] = trainer.optimizers[0].param_groups[0]["lr"]

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == self.step and self.at_step is None:
            self.at_step = self._weights(module)
        if self.pruning.masks is not None:
            self.sparsities.append(sparsity(self.pruning.masks))


def fit(tmp_path, *overrides, step: int = 0):
    cfg = compose_config(*TINY, "model=lenet_300_100", *overrides)
    tmp_path.mkdir(parents=True, exist_ok=True)
    parts = prepare(cfg, tmp_path)
    recorder = Recorder(parts.engine, step)
    trainer = build(cfg.trainer, max_epochs=parts.engine.schedule.total_epochs, logger=False,
                    callbacks=[PruningCallback(parts.engine), recorder], enable_checkpointing=False,
                    default_root_dir=str(tmp_path))
    trainer.fit(parts.module, datamodule=parts.datamodule)
    return parts.engine, recorder, cfg


@pytest.mark.parametrize("rewind, step", [("init", 0), ("7", 7)])
def test_rewinding_restores_the_saved_weights_bit_for_bit(rewind, step, tmp_path):
    engine, rec, _ = fit(tmp_path, "schedule=lottery", f"schedule.rewind={rewind}", step=step)
    assert set(rec.stage_starts) == {0, 1, 2}
    for stage in (1, 2):
        weights, masks = rec.stage_starts[stage]
        for name, w in weights.items():
            if name in masks:
                assert torch.equal(w[masks[name]], rec.at_step[name][masks[name]])
                assert torch.all(w[~masks[name]] == 0) and (~masks[name]).any()
            else:
                assert torch.equal(w, rec.at_step[name])
    init = rec.stage_starts[0][0]
    assert all(torch.equal(init[n], rec.at_step[n]) for n in init) == (step == 0)


def test_random_rewind_draws_new_initial_weights_every_stage(tmp_path):
    engine, rec, cfg = fit(tmp_path, "schedule=lottery", "schedule.rewind=random", "seed=4")
    init = rec.stage_starts[0][0]
    firsts = []
    for stage in (1, 2):
        weights, masks = rec.stage_starts[stage]
        fresh = fresh_init(lambda: build(cfg.model), 1_000_003 * 5 + stage)
        for name, mask in masks.items():
            assert torch.equal(weights[name][mask], fresh[name][mask]) and torch.all(weights[name][~mask] == 0)
            assert not torch.equal(weights[name][mask], init[name][mask])
        firsts.append(weights[next(iter(masks))])
    assert not torch.equal(firsts[0], firsts[1])


def test_retraining_runs_at_the_scaled_learning_rate(tmp_path):
    _, rec, cfg = fit(tmp_path, "schedule.finetune_lr_scale=0.1")
    assert rec.lrs[0] == pytest.approx(cfg.optimizer.lr)
    assert rec.lrs[1] == pytest.approx(0.1 * cfg.optimizer.lr) and rec.lrs[2] == pytest.approx(0.1 * cfg.optimizer.lr)


def test_agp_raises_sparsity_gradually_and_ends_each_stage_on_target(tmp_path):
    engine, rec, _ = fit(tmp_path, "schedule=agp", "schedule.finetune_epochs=2", "schedule.ramp_epochs=1",
                           "schedule.every=2")
    assert rec.sparsities == sorted(rec.sparsities)
    assert len({round(s, 4) for s in rec.sparsities}) >= 6, "sparsity must rise in many small steps"
    assert [r["weight_sparsity"] for r in engine.rows] == pytest.approx([0.0, 0.5, 0.8], abs=1e-3)
    assert [r["target_sparsity"] for r in engine.rows] == [0.0, 0.5, 0.8]


def test_a_ticket_control_replays_the_tickets_masks_exactly(tmp_path):
    rates = "+pruning.layer_rates={5.weight:0.5}"
    common = ["model=lenet_300_100", "pruning.scope=layer", "pruning.exclude_output=false", rates]
    ticket = run(compose_config(*TINY, *common, "schedule=lottery", "schedule.targets=[0.2,0.36,0.488]"),
                 tmp_path / "ticket")
    saved = torch.load(tmp_path / "ticket" / "masks.pt", weights_only=True)
    assert sorted(saved) == [1, 2, 3] and all(torch.equal(saved[3][n], m) for n, m in ticket.masks.items())
    control = fit(tmp_path / "control", *common, "schedule=lottery", "schedule.targets=[0.36,0.488]",
                  "schedule.pretrain_epochs=0", "schedule.rewind=random",
                  "pruning.criterion._target_=prunelab.pruning.criteria.TicketMasks",
                  f"+pruning.criterion.path={tmp_path / 'ticket' / 'masks.pt'}")[1]
    for stage, ticket_stage in ((1, 2), (2, 3)):
        masks = control.stage_starts[stage][1]
        assert all(torch.equal(masks[n], saved[ticket_stage][n]) for n in masks)


def test_replaying_missing_masks_is_refused_before_training(tmp_path):
    cfg = compose_config(*TINY, "pruning.criterion._target_=prunelab.pruning.criteria.TicketMasks",
                         f"+pruning.criterion.path={tmp_path / 'none.pt'}")
    with pytest.raises(ConfigError, match="pruning.criterion.path"):
        prepare(cfg, tmp_path)


def test_rewinding_to_init_survives_the_shared_dense_model(tmp_path):
    # With the dense cache the run continues from a checkpoint of dense training: the snapshot must come with it.
    over = [*TINY, "model=lenet_300_100", "schedule=lottery", f"store_dir={tmp_path / 'store'}"]
    cached, plain = (run(compose_config(*over, f"cache={c}"), tmp_path / c) for c in ("true", "false"))
    assert (tmp_path / "store" / "dense").is_dir()
    measured = ["stage_time_s", "wall_time_s", "latency_ms"]
    pd.testing.assert_frame_equal(cached.results.drop(columns=measured), plain.results.drop(columns=measured))
    for (name, a), b in zip(cached.module.model.state_dict().items(), plain.module.model.state_dict().values()):
        assert torch.equal(a, b), name
