"""Every option of every config group composes and instantiates; bad input gets a clear message."""


import pytest
import torch
from hydra._internal.utils import _locate
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from prunelab.api import pruner
from prunelab.config import build
from tests.helpers import compose_config, language_models, options, tiny_llama

# A dataset each model accepts (the digits default suits the small models).
MODEL_DATA = {"lenet5": ["dataset=synthetic", "dataset.input_shape=[1,28,28]"],
              "vgg16_bn": ["dataset=synthetic", "dataset.input_shape=[3,32,32]"],
              "torchvision": ["dataset=synthetic", "dataset.input_shape=[3,32,32]"]}
CIFAR_LIKE = ["dataset=synthetic", "dataset.input_shape=[3,32,32]"]


@pytest.mark.parametrize("model", options("model"))
def test_every_model_composes_instantiates_and_runs(model, tmp_path):
    if model in language_models():
        return _check_language_model(model, tmp_path)
    data = MODEL_DATA.get(model, CIFAR_LIKE if model.startswith("resnet") else [])
    cfg = compose_config(f"model={model}", *data)
    net = build(cfg.model)
    x = torch.randn(2, *cfg.dataset.input_shape)
    assert net(x).shape == (2, cfg.dataset.num_classes)
    assert isinstance(cfg.model.name, str) and cfg.model.name


def _check_language_model(model: str, tmp_path) -> None:
    """A language model (a size, or a folder saved by save_pretrained) over the text's vocabulary: per-token logits."""
    tiny_llama(vocab_size=256).lm.save_pretrained(tmp_path / "saved")
    cfg = compose_config(f"model={model}", "dataset=text", "dataset.vocab_size=256", f"+model.path={tmp_path / 'saved'}"
                         if model == "causal_lm" else "dataset.seq_len=16")
    ids = torch.randint(256, (2, 16))
    assert build(cfg.model)(ids).shape == (2, 16, 256) and cfg.model.name == model


@pytest.mark.parametrize("dataset", options("dataset"))
def test_every_dataset_composes_and_instantiates(dataset, tmp_path):
    extra = ["dataset.root=" + str(tmp_path), "dataset.num_classes=3"] if dataset == "imagefolder" else []
    cfg = compose_config(f"dataset={dataset}", *extra)
    dm = build(cfg.dataset)
    if dataset == "text":  # windows of token ids, no classes
        assert dm.input_shape == (cfg.dataset.seq_len,) and cfg.task.name == "language_modeling"
        return
    assert list(dm.input_shape) == list(cfg.dataset.input_shape) and dm.num_classes == cfg.dataset.num_classes


@pytest.mark.parametrize("group", ["pruning", "schedule"])
def test_every_pruning_method_and_schedule_instantiates(group):
    for option in options(group):
        cfg = compose_config(f"{group}={option}")
        target = _locate(cfg[group]._target_)
        built = build(cfg[group])
        assert (isinstance(built, target) if isinstance(target, type) else callable(built)) and cfg[group].name == option


def _calibration_seeds(node) -> list:
    """The seed of every calibration draw in a plain config."""
    if isinstance(node, dict):
        own = [node["seed"]] if node.get("_target_") == "prunelab.pruning.calibration.Calibration" else []
        return own + [s for v in node.values() for s in _calibration_seeds(v)]
    return []


@pytest.mark.parametrize("method", ["wanda", "sparsegpt"])
def test_calibration_draws_follow_the_run_seed_and_keep_seed_0_where_the_method_stands_alone(method):
    for seed in (0, 3):
        cfg = compose_config(f"pruning={method}", "owl=owl", f"seed={seed}")
        assert _calibration_seeds(OmegaConf.to_container(cfg, resolve=True)) == [seed, seed]  # the method's, OWL's
    assert pruner(method).calibration.seed == 0  # prunelab.prune: the pruning node without a run


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
        assert built.save_dir == str(tmp_path)
        if logger == "wandb":
            assert built.experiment.config["seed"] == 0
            built.experiment.finish()


def test_unknown_option_lists_the_choices():
    with pytest.raises(ConfigCompositionException, match="Available options"):
        compose_config("pruning=nonexistent")
