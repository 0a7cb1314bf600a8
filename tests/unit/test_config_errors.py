"""Whole classes of ordinary mistakes get one ConfigError naming the setting and the fix, before any training:
Trainer settings Lightning rejects, optimizer settings torch rejects, keys that nothing reads, files that are
not what they claim, a store that cannot be written. (tests/e2e/test_errors.py runs one of each through the
command.)"""

import json

import pytest
import torch

from prunelab.errors import ConfigError
from prunelab.models import MLP, LeNet5
from prunelab.paths import RunPaths
from prunelab.runs import resume, schemas
from prunelab.runs.folder import read_results
from prunelab.runs.hardware import check_trainer
from prunelab.runs.job import writable
from prunelab.runs.optimizer import check_optimizer
from prunelab.runs.run import load_dense
from prunelab.training.export import save_model
from tests.helpers import compose_config

LIGHTNING = [
    ({"accelerator": "tpuu"}, "trainer.accelerator"),
    ({"accelerator": "mps"}, "trainer.accelerator"),
    ({"devices": 0}, "trainer.devices"),
    ({"devices": "many"}, "trainer.devices"),
    ({"num_nodes": 0}, "trainer.num_nodes"),
    ({"strategy": "fsdq"}, "trainer.strategy"),
    ({"precision": "17"}, "trainer.precision"),
    ({"accelerator": "cpu", "devices": 1, "strategy": "deepspeed_stage_9"}, "trainer.strategy"),
]
if not torch.cuda.is_available():
    LIGHTNING.append(({"accelerator": "gpu", "devices": 1}, "trainer.accelerator"))


@pytest.mark.parametrize("trainer, setting", LIGHTNING)
def test_a_hardware_setting_lightning_rejects_is_named(trainer, setting):
    with pytest.raises(ConfigError) as err:
        check_trainer({"_target_": "pytorch_lightning.Trainer", **trainer})
    assert err.value.setting == setting and "rejected by Lightning" in err.value.problem


@pytest.mark.parametrize("trainer", ["cpu", pytest.param("gpu", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no GPU"))])
def test_the_shipped_trainers_pass(trainer):
    check_trainer(dict(compose_config(f"trainer={trainer}").trainer))


SGD = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.05, "momentum": 0.9, "nesterov": True}


@pytest.mark.parametrize("optimizer, setting", [
    ({**SGD, "lr": -0.1}, "optimizer.lr"),
    ({**SGD, "momentum": -0.5}, "optimizer.momentum"),
    ({**SGD, "momentum": 0.0}, "optimizer.nesterov"),  # Nesterov needs momentum: the flag is what to change
    ({**SGD, "weight_decay": -1.0}, "optimizer.weight_decay"),
    ({"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3, "betas": [1.5, 0.999]}, "optimizer.betas"),
])
def test_an_optimizer_setting_torch_rejects_is_named_with_its_default(optimizer, setting):
    with pytest.raises(ConfigError) as err:
        check_optimizer(optimizer)
    assert err.value.setting == setting and f"rejected by {optimizer['_target_']}" in err.value.problem
    assert "its default" in err.value.fix


def test_the_shipped_optimizer_passes():
    check_optimizer(dict(compose_config().optimizer))


def test_a_precision_lightning_does_not_know_is_named_with_the_ones_it_does():
    with pytest.raises(ConfigError) as err:
        schemas.check(compose_config("trainer.precision=float7"))
    assert err.value.setting == "trainer.precision" and "'bf16-mixed'" in err.value.fix


@pytest.mark.parametrize("override, setting", [
    ("+colour=red", "colour"),
    ("+metrics.latency_batches=2", "metrics.latency_batches"),
    ("+trainer.max_epoch=3", "trainer.max_epoch"),
    ("+optimizer.betas=[0.9,0.99]", "optimizer.betas"),
    ("+scheduler.warmup=2", "scheduler.warmup"),
    ("+model.width.scale=2", "model.width"),
    ("+pruning.criterion.power=2", "pruning.criterion.power"),
    ("+dataset.shuffle=false", "dataset.shuffle"),
])
def test_a_key_that_nothing_reads_is_named_wherever_it_was_added(override, setting):
    with pytest.raises(ConfigError) as err:
        schemas.check(compose_config(override))
    assert err.value.setting == setting and "is not a setting of" in err.value.problem


@pytest.mark.parametrize("option", ["cpu", "gpu", "ddp"])
def test_every_trainer_and_logger_passes_the_key_check(option):
    for logger in ("none", "csv", "wandb"):
        schemas.check(compose_config(f"trainer={option}", f"logger={logger}"))


def lenet(path):
    torch.save(LeNet5([1, 28, 28], 10).state_dict(), path)


def truncated(path):
    lenet(path)
    path.write_bytes(path.read_bytes()[:300])


def text(path):
    path.write_text("not a checkpoint\n")


def tensor(path):
    torch.save(torch.zeros(3), path)


@pytest.mark.parametrize("write, says", [(lenet, "does not fit"), (truncated, "is damaged"), (text, "is damaged"),
                                         (tensor, "holds a Tensor")])
def test_a_dense_checkpoint_that_is_not_what_it_claims_is_named(write, says, tmp_path):
    write(tmp_path / "dense.pt")
    with pytest.raises(ConfigError) as err:
        load_dense(MLP([1, 28, 28], 10), str(tmp_path / "dense.pt"))
    assert err.value.setting == "dense_checkpoint" and says in str(err.value)


def plain_state(model, path):
    torch.save(model.state_dict(), path)


def lightning_checkpoint(model, path):
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}, "epoch": 3}, path)


def final_state(model, path):  # a run's model_final_state.pt
    save_model(RunPaths(path.parent), model, None, {"model": {}}, [1, 28, 28], [], program=False)
    RunPaths(path.parent).model_state.rename(path)


@pytest.mark.parametrize("write", [plain_state, lightning_checkpoint, final_state])
def test_a_dense_checkpoint_loads_from_a_state_dict_a_lightning_checkpoint_or_a_runs_final_state(write, tmp_path):
    torch.manual_seed(0)
    trained, fresh = MLP([1, 28, 28], 10), MLP([1, 28, 28], 10)
    write(trained, tmp_path / "dense.pt")
    load_dense(fresh, str(tmp_path / "dense.pt"))
    assert all(torch.equal(a, b) for a, b in zip(trained.state_dict().values(), fresh.state_dict().values()))


@pytest.mark.parametrize("content", ['stage,val_acc\n"1,\n', "", "stage,loss\n0,1.0\n", "\x00\xff\x00"])
def test_a_damaged_results_table_names_the_file_and_how_to_recover(content, tmp_path):
    paths = RunPaths(tmp_path)
    paths.results.write_bytes(content.encode("latin-1"))
    with pytest.raises(ConfigError) as err:
        read_results(paths)
    assert str(paths.results) in err.value.problem and f"delete {tmp_path}" in err.value.fix


def test_a_truncated_run_checkpoint_says_to_delete_the_checkpoints(tmp_path):
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir()
    torch.save({"state_dict": LeNet5([1, 28, 28], 10).state_dict()}, ckpt)
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    with pytest.raises(ConfigError) as err:
        resume.check(ckpt, resume.Stamp("run", {}), tmp_path)
    assert "last.ckpt is damaged" in err.value.problem and f"delete {ckpt.parent}" in err.value.fix


def test_a_store_that_cannot_be_written_is_named(tmp_path):
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ConfigError) as err:
        writable(tmp_path / "a_file" / "store" / "runs" / "x")
    assert err.value.setting == "store_dir" and "cannot write" in err.value.problem


def test_dense_weights_are_checked_against_the_record_beside_them(tmp_path):
    from prunelab.config import build
    from prunelab.runs.protocol import check_dense_record, data_fingerprint
    from tests.helpers import compose_config

    cfg = compose_config()
    datamodule = build(cfg.dataset)
    weights = tmp_path / "dense.pt"
    weights.write_bytes(b"")
    check_dense_record(weights, {"name": "digits_cnn"}, datamodule)  # no record: loads unchecked
    (tmp_path / "protocol.json").write_text(json.dumps({"data": data_fingerprint(datamodule)}))
    (tmp_path / "settings.json").write_text(json.dumps({"model": {"name": "digits_cnn"}}))
    check_dense_record(weights, {"name": "digits_cnn"}, datamodule)
    with pytest.raises(ConfigError, match="was trained as model") as err:
        check_dense_record(weights, {"name": "digits_cnn", "width": 2}, datamodule)
    assert err.value.setting == "dense_checkpoint"
    (tmp_path / "protocol.json").write_text(json.dumps({"data": "0" * 64}))
    with pytest.raises(ConfigError, match="trained on other data"):
        check_dense_record(weights, {"name": "digits_cnn"}, datamodule)


def test_checking_that_a_store_can_be_written_makes_nothing(tmp_path):
    writable(tmp_path / "store" / "runs" / "x")
    assert list(tmp_path.iterdir()) == []
