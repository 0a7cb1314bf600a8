"""Every option of every config group composes and instantiates; bad input gets a clear message."""

import subprocess
import sys

import pytest
import torch
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from prunelab.config import build
from tests.helpers import SHARED_DATA, TINY, compose_config, options

# A dataset each model accepts (the digits default suits the small models).
MODEL_DATA = {"lenet5": ["dataset=synthetic", "dataset.input_shape=[1,28,28]"],
              "vgg16_bn": ["dataset=synthetic", "dataset.input_shape=[3,32,32]"],
              "torchvision": ["dataset=synthetic", "dataset.input_shape=[3,32,32]"]}
CIFAR_LIKE = ["dataset=synthetic", "dataset.input_shape=[3,32,32]"]


@pytest.mark.parametrize("model", options("model"))
def test_every_model_composes_instantiates_and_runs(model):
    data = MODEL_DATA.get(model, CIFAR_LIKE if model.startswith("resnet") else [])
    cfg = compose_config(f"model={model}", *data)
    net = build(cfg.model)
    x = torch.randn(2, *cfg.dataset.input_shape)
    assert net(x).shape == (2, cfg.dataset.num_classes)
    assert isinstance(cfg.model.name, str) and cfg.model.name


@pytest.mark.parametrize("dataset", options("dataset"))
def test_every_dataset_composes_and_instantiates(dataset, tmp_path):
    extra = ["dataset.root=" + str(tmp_path), "dataset.num_classes=3"] if dataset == "imagefolder" else []
    cfg = compose_config(f"dataset={dataset}", *extra)
    dm = build(cfg.dataset)
    assert list(dm.input_shape) == list(cfg.dataset.input_shape) and dm.num_classes == cfg.dataset.num_classes


@pytest.mark.parametrize("group", ["pruning", "schedule"])
def test_every_pruning_method_and_schedule_instantiates(group):
    for option in options(group):
        cfg = compose_config(f"{group}={option}")
        assert build(cfg[group]) is not None and cfg[group].name == option


@pytest.mark.parametrize("trainer", options("trainer"))
def test_every_trainer_config_composes(trainer):
    cfg = compose_config(f"trainer={trainer}")
    assert cfg.trainer._target_ == "pytorch_lightning.Trainer"
    if trainer == "cpu":
        assert build(cfg.trainer, max_epochs=1, logger=False).max_epochs == 1


@pytest.mark.parametrize("logger", options("logger"))
def test_every_logger_instantiates(logger, tmp_path):
    cfg = compose_config(f"logger={logger}")
    built = build(cfg.logger, save_dir=str(tmp_path), run_config=OmegaConf.to_container(cfg, resolve=True))
    if logger == "none":
        assert built is False
    else:
        assert built.save_dir == str(tmp_path) or str(tmp_path) in str(built.log_dir)
        if logger == "wandb":
            assert built.experiment.config["seed"] == 0
            built.experiment.finish()


def test_unknown_option_lists_the_choices():
    with pytest.raises(ConfigCompositionException, match="Available options"):
        compose_config("pruning=nonexistent")


def prunelab(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "prunelab", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize(
    "args, setting",
    [
        (["schedule.targets=[0.5,1.2]"], "schedule.targets"),
        (["schedule.targets=[0.9,0.5]"], "schedule.targets"),
        (["pruning.exclude=[*]"], "pruning.exclude"),
        (["dataset=cifar10", "dataset.download=false", "dataset.data_dir=nowhere"], "nowhere"),
        (["model=lenet5"], "model"),
    ],
)
def test_cli_bad_input_gives_one_clear_line_and_no_traceback(args, setting, tmp_path):
    proc = prunelab(*TINY, *args, f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert proc.returncode == 2
    assert "prunelab: error: " in proc.stderr and setting in proc.stderr and "Fix:" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "results.csv").exists()


def test_cli_unknown_method_names_the_options(tmp_path):
    proc = prunelab("pruning=nonexistent", cwd=tmp_path)
    assert proc.returncode != 0 and "Available options in 'pruning'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(), reason="../shared/data is not here")
def test_mnist_loads_from_shared_data():
    cfg = compose_config("dataset=mnist", f"dataset.data_dir={SHARED_DATA}", "dataset.download=false")
    dm = build(cfg.dataset)
    dm.check()
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape[1:] == (1, 28, 28) and int(y.max()) <= 9
