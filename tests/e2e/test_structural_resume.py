"""A structural run killed at any point (dense training, right after a removal, mid fine-tune, while saving a
checkpoint) continues in its folder and ends exactly as an uninterrupted one: the rerun rebuilds the pruned
architecture from the checkpoint, and later targets are still fractions of the dense model's channels."""

import functools

import pytest
from lightning_fabric.plugins import TorchCheckpointIO

from prunelab.training.callback import PruningCallback
from tests.helpers import (
    SMALL,
    TINY,
    Stopped,
    assert_same_run,
    compose_config,
    run,
    stop_at_epoch_start,
    structural_options,
    widths,
)

# 8 epochs: 2 dense, then 2 stages of 3 fine-tuning epochs (epochs 2-4 and 5-7).
SHORT = [*TINY, *SMALL, "schedule.finetune_epochs=3", "schedule.targets=[0.3,0.5]", "cache=false"]
SCHEDULES = {
    "iterative": ["schedule=iterative"],
    "oneshot": ["schedule=oneshot"],
    "agp": ["schedule=agp", "schedule.ramp_epochs=2", "schedule.every=1"],  # removes channels at every step
}


def at_epoch_start(epoch: int):
    return functools.partial(stop_at_epoch_start, epoch=epoch)


def after_first_removal(monkeypatch):
    """Killed after the first optimizer step on the pruned model, before its epoch is checkpointed."""
    original = PruningCallback.on_train_batch_end

    def crash(self, trainer, pl_module, outputs, batch, batch_idx):
        original(self, trainer, pl_module, outputs, batch, batch_idx)
        if trainer.current_epoch == 2:
            raise Stopped

    monkeypatch.setattr(PruningCallback, "on_train_batch_end", crash)


def while_saving(monkeypatch):
    """Killed halfway through writing the checkpoint after the first epoch of stage 2."""
    original = TorchCheckpointIO.save_checkpoint

    def crash(self, checkpoint, path, storage_options=None):
        if checkpoint["epoch"] == 5:
            path.write_bytes(b"half a checkpoint")
            raise Stopped
        return original(self, checkpoint, path, storage_options)

    monkeypatch.setattr(TorchCheckpointIO, "save_checkpoint", crash)


KILLS = {"dense-training": at_epoch_start(1), "right-after-removal": after_first_removal,
         "mid-fine-tune": at_epoch_start(3), "while-saving": while_saving}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The uninterrupted run of each (method, schedule), computed once."""
    done = {}

    def get(method: str, schedule: str):
        if (method, schedule) not in done:
            folder = tmp_path_factory.mktemp(f"{method}-{schedule}")
            done[method, schedule] = run(compose_config(*SHORT, f"pruning={method}", *SCHEDULES[schedule]), folder)
        return done[method, schedule]
    return get


def kill_and_resume(method: str, schedule: str, kill: str, folder, monkeypatch):
    cfg = [*SHORT, f"pruning={method}", *SCHEDULES[schedule]]
    KILLS[kill](monkeypatch)
    with pytest.raises(Stopped):
        run(compose_config(*cfg), folder)
    monkeypatch.undo()
    return run(compose_config(*cfg), folder)


@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_a_structural_run_killed_mid_fine_tune_ends_as_the_uninterrupted_one(schedule, uninterrupted, tmp_path,
                                                                            monkeypatch):
    resumed = kill_and_resume("l1_filter", schedule, "mid-fine-tune", tmp_path, monkeypatch)
    reference = uninterrupted("l1_filter", schedule)
    assert_same_run(resumed, reference)
    assert widths(resumed.module.model) == widths(reference.module.model)
    assert resumed.results["param_sparsity"].iloc[-1] > resumed.results["param_sparsity"].iloc[1] > 0.2
    for out in (resumed, reference):  # gradual removals too leave the optimizer holding the new parameters
        optimized = {id(p) for group in out.module.trainer.optimizers[0].param_groups for p in group["params"]}
        assert optimized == {id(p) for p in out.module.model.parameters()}


@pytest.mark.slow
@pytest.mark.parametrize("kill", list(KILLS))
@pytest.mark.parametrize("schedule", list(SCHEDULES))
@pytest.mark.parametrize("method", structural_options())
def test_a_structural_run_killed_anywhere_ends_as_the_uninterrupted_one(method, schedule, kill, uninterrupted,
                                                                       tmp_path, monkeypatch):
    assert_same_run(kill_and_resume(method, schedule, kill, tmp_path, monkeypatch), uninterrupted(method, schedule))
