"""A run stopped at any point continues where it stopped and ends exactly as an uninterrupted one;
a checkpoint of another run is refused; equal seeds give equal masks and metrics."""

import os
import shutil
import signal
import time

import pandas as pd
import pytest
import torch

from prunelab.errors import ConfigError
from prunelab.paths import RunPaths
from prunelab.runs.folder import read_status
from prunelab.runs.run import RunResult
from prunelab.training.callback import PruningCallback
from tests.helpers import (
    LM,
    SMALL,
    TIMES,
    TINY,
    Stopped,
    assert_same_run,
    cli,
    compose_config,
    run,
    stop_at_epoch_start,
    stop_in_epoch,
    text_corpus,
    text_options,
)

# 8 epochs: 2 dense, then 2 stages of 3 fine-tuning epochs, so a stage can be cut in its middle.
SHORT = [*TINY, *SMALL, "schedule.finetune_epochs=3"]


@pytest.fixture(scope="module")
def reference_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("reference")


@pytest.fixture(scope="module")
def reference(reference_dir) -> RunResult:
    """An uninterrupted run that trains its dense model itself (no cache)."""
    return run(compose_config(*SHORT, "cache=false"), reference_dir)


@pytest.mark.parametrize("hook, epoch", [("on_train_epoch_start", 3), ("on_train_end", None)],
                         ids=["mid-fine-tune", "after-the-last-epoch"])
def test_a_stopped_run_continues_to_the_uninterrupted_result(hook, epoch, reference, tmp_path, monkeypatch):
    original = getattr(PruningCallback, hook)

    def crash(self, trainer, pl_module):
        if epoch is None or trainer.current_epoch == epoch:
            raise Stopped
        return original(self, trainer, pl_module)

    monkeypatch.setattr(PruningCallback, hook, crash)
    with pytest.raises(Stopped):
        run(compose_config(*SHORT, "cache=false"), tmp_path)
    monkeypatch.undo()
    rows_before = len(pd.read_csv(tmp_path / "results.csv"))
    assert rows_before < len(reference.results)
    assert_same_run(run(compose_config(*SHORT, "cache=false"), tmp_path), reference)


def test_a_language_model_run_stopped_inside_a_fine_tuning_epoch_continues_to_the_uninterrupted_result(tmp_path,
                                                                                                      monkeypatch):
    # a tiny LLaMA, AdamW (its moments are in the checkpoint), 2 steps an epoch; epoch 3 is the second of the
    # first target's 3 fine-tuning epochs: the stop lands after its first step, before its checkpoint
    config = [*TINY, "schedule.finetune_epochs=3", *LM, *text_options(text_corpus(tmp_path / "corpus"), tmp_path / "cache"), "dataset.limit=24",
              "optimizer=adamw", "optimizer.lr=0.01", "cache=false"]
    uninterrupted = run(compose_config(*config), tmp_path / "reference")
    stop_in_epoch(monkeypatch, 3)
    with pytest.raises(Stopped):
        run(compose_config(*config), tmp_path / "stopped")
    monkeypatch.undo()
    assert len(pd.read_csv(tmp_path / "stopped" / "results.csv")) == 1 < len(uninterrupted.results)
    started, original = [], PruningCallback.on_train_epoch_start

    def record(self, trainer, pl_module):
        started.append(trainer.current_epoch)
        return original(self, trainer, pl_module)

    monkeypatch.setattr(PruningCallback, "on_train_epoch_start", record)
    assert_same_run(run(compose_config(*config), tmp_path / "stopped"), uninterrupted)
    assert started == [3, 4, 5, 6, 7]  # continued from the checkpoint of epoch 2, not from the start


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["iterative", "oneshot"])
@pytest.mark.parametrize("epoch", range(1, 8))
def test_a_run_stopped_before_any_epoch_continues_to_the_uninterrupted_result(schedule, epoch, tmp_path, monkeypatch):
    config = [*SHORT, f"schedule={schedule}", "cache=false"]
    uninterrupted = run(compose_config(*config), tmp_path / "reference")
    stop_at_epoch_start(monkeypatch, epoch)
    with pytest.raises(Stopped):
        run(compose_config(*config), tmp_path / "stopped")
    monkeypatch.undo()
    assert_same_run(run(compose_config(*config), tmp_path / "stopped"), uninterrupted)


def last_epoch(run_dirs) -> int:
    """The last completed epoch (1-based) checkpointed in any of `run_dirs`, 0 if none."""
    for ckpt in (d / "checkpoints" / "last.ckpt" for d in run_dirs):
        if ckpt.is_file():
            return torch.load(ckpt, weights_only=True, mmap=True)["epoch"] + 1
    return 0


@pytest.mark.slow  # a multirun or CLI subprocesses: the slow suite (pytest -m slow) runs it
def test_sigkill_in_the_middle_of_fine_tuning_then_the_same_command_finishes_the_same_run(reference, tmp_path):
    store, args = tmp_path / "store", [*SHORT, "hydra.run.dir=."]
    (tmp_path / "first").mkdir()
    proc = cli(*args, cwd=tmp_path / "first", store=store)
    pretrain, deadline = 2, time.monotonic() + 600
    while last_epoch((store / "runs").glob("*")) <= pretrain:  # until a fine-tuning epoch is checkpointed
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    (run_dir,) = (store / "runs").glob("*")
    killed_at = last_epoch([run_dir])
    assert pretrain < killed_at < 8, "the kill must land inside fine-tuning"
    assert len(pd.read_csv(run_dir / "results.csv")) < len(reference.results)

    (tmp_path / "second").mkdir()
    again = cli(*args, cwd=tmp_path / "second", store=store)
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err[-3000:]
    log = (tmp_path / "second" / "cli.log").read_text()
    assert f"after epoch {killed_at}\n" in log and "dense model: training" not in log
    resumed = pd.read_csv(tmp_path / "second" / "results.csv")
    pd.testing.assert_frame_equal(resumed.drop(columns=TIMES), reference.results.drop(columns=TIMES),
                                  check_dtype=False)


def test_ctrl_c_says_the_same_command_continues_the_run_and_records_it_interrupted(tmp_path):
    store = tmp_path / "store"
    args = [*TINY, *SMALL, "cache=false", "schedule.pretrain_epochs=1000"]  # long enough to be stopped in training
    proc = cli(*args, f"hydra.run.dir={tmp_path / 'job'}", cwd=tmp_path, store=store)
    deadline = time.monotonic() + 600
    while last_epoch((store / "runs").glob("*")) < 1:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    out, err = proc.communicate(timeout=600)
    (run_dir,) = (store / "runs").glob("*")
    said = [line for line in (out + err).splitlines() if line.startswith("prunelab: ")]
    assert proc.returncode == 130 and "Traceback" not in err, err[-3000:]
    assert said == [f"prunelab: interrupted: the run in {run_dir} stopped; run the same command again to continue "
                     "it from its last checkpoint"]
    assert read_status(RunPaths(run_dir))["status"] == "interrupted"
    assert read_status(RunPaths(tmp_path / "job"))["status"] == "interrupted"


def test_a_checkpoint_of_another_run_is_refused_saying_what_differs(reference, reference_dir, tmp_path):
    (tmp_path / "checkpoints").mkdir()
    shutil.copyfile(reference_dir / "checkpoints" / "last.ckpt", tmp_path / "checkpoints" / "last.ckpt")
    with pytest.raises(ConfigError, match=r"schedule.targets: \[0.5, 0.8\] in the checkpoint, \[0.5, 0.9\] now") as err:
        run(compose_config(*SHORT, "cache=false", "schedule.targets=[0.5,0.9]"), tmp_path)
    assert err.value.setting == "resume" and str(tmp_path) in err.value.fix
    assert not (tmp_path / "results.csv").exists()


def test_equal_seeds_give_identical_masks_and_metrics(reference, tmp_path):
    assert_same_run(run(compose_config(*SHORT, "cache=false"), tmp_path), reference)
