"""The dense cache: keyed by exactly the settings of dense training, trained once however many runs
ask at once, never read half-written, and every method starts from the same dense weights."""

import threading

import pytest

from prunelab.runs import cache, identity
from prunelab.runs.spec import from_config
from tests.helpers import compose_config


def spec(*overrides: str):
    return from_config(compose_config(*overrides), ".")


def entry(*overrides: str):
    return cache.entry(spec(*overrides)).root


@pytest.fixture(scope="module")
def default_entry():
    return entry()


@pytest.mark.parametrize("override", [
    "pruning=random", "schedule=oneshot", "schedule.targets=[0.3]", "schedule.finetune_epochs=7", "logger=csv",
    "trainer.enable_progress_bar=false", "dataset.num_workers=2", "+optimizer.dampening=0",  # SGD's default
    "task.module.label_smoothing=0.0", "task.tolerance=0.02",
])
def test_settings_that_do_not_touch_dense_training_keep_the_key(override, default_entry):
    assert entry(override) == default_entry


@pytest.mark.parametrize("override", [
    "seed=1", "model=lenet_300_100", "dataset=synthetic", "dataset.batch_size=32", "optimizer.lr=0.1",
    "+optimizer.maximize=true", "schedule.pretrain_epochs=3", "scheduler._target_=prunelab.training.lr.constant",
    "trainer.deterministic=false", "task.module.label_smoothing=0.1",
])
def test_settings_of_dense_training_change_the_key(override, default_entry):
    assert entry(override) != default_entry


def fake_training(calls: list, weights: str = "weights", wait: threading.Event | None = None):
    def train(work):
        calls.append(work)
        if wait is not None:
            wait.wait(5)
        work.mkdir(parents=True, exist_ok=True)
        (work / "last.ckpt").write_text(weights)
        return work / "last.ckpt"
    return train


def test_runs_asking_at_once_get_one_training_and_the_same_checkpoint(tmp_path):
    cfg = spec(f"store_dir={tmp_path}")
    calls, got, release = [], [], threading.Event()
    train = fake_training(calls, wait=release)
    threads = [threading.Thread(target=lambda: got.append(cache.dense_checkpoint(cfg, train))) for _ in range(3)]
    for t in threads:
        t.start()
    release.set()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(got) == 3 and len(set(got)) == 1 and got[0].read_text() == "weights"
    assert (tmp_path / "dense" / "trained.log").read_text().splitlines() == [cache.entry(cfg).root.name]


def test_an_entry_without_its_complete_marker_is_never_read_and_training_continues_its_work(tmp_path):
    cfg = spec(f"store_dir={tmp_path}")
    folder = cache.entry(cfg).root
    folder.mkdir(parents=True)
    (folder / "dense.ckpt").write_text("half written")  # a training that died before its marker

    def dies(work):
        work.mkdir(parents=True)
        (work / "progress").write_text("epoch 1")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.dense_checkpoint(cfg, dies)
    seen = []

    def continues(work):
        seen.append((work / "progress").read_text())
        return fake_training([])(work)

    assert cache.dense_checkpoint(cfg, continues).read_text() == "weights"
    assert seen == ["epoch 1"] and not folder.with_suffix(".work").exists()


def test_full_fine_tuning_adds_nothing_to_the_run_key_so_runs_from_before_the_recovery_group_continue():
    config = spec().config
    assert config["recovery"]["_target_"] == "prunelab.training.recovery.FullFineTuning"
    without_group = {k: v for k, v in config.items() if k != "recovery"}
    assert identity.digest(identity.settings(config)) == identity.digest(identity.settings(without_group))
    assert "recovery" not in spec().settings and "recovery" in spec("recovery=lora").settings
    assert spec("recovery=lora").key != spec().key


def test_label_smoothing_is_part_of_the_run_key_and_the_dense_settings_only_when_set():
    smoothed = spec("task.module.label_smoothing=0.1")
    assert smoothed.key != spec().key and spec("task.module.label_smoothing=0").key == spec().key
    assert smoothed.dense_settings["task"] == {"module": {"label_smoothing": 0.1}}
    assert "task" not in spec().dense_settings and "task" not in spec().settings
