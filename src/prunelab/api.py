"""prunelab from Python: prune a model once (`prune`) and keep its masks while your own loop fine-tunes it
(`hold_masks`), or prune inside your own Lightning project (`pruning_callback`). The methods are the options
of the `pruning` config group, so each name means what `pruning=<name>` means on the command line."""

import copy
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from pytorch_lightning.loggers import Logger
from torch import nn

from prunelab.config import build
from prunelab.errors import ConfigError
from prunelab.paths import RunPaths
from prunelab.pruning.contract import Pruner
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.masks import Masks, count_parameters, full_masks, param_sparsity, weight_sparsity
from prunelab.runs.folder import RunFolder
from prunelab.runs.schemas import check_node
from prunelab.seeds import prune_generator
from prunelab.tracking.sink import LoggerSink
from prunelab.training.callback import PruningCallback
from prunelab.training.engine import StageEngine
from prunelab.training.masking import hold_masks  # noqa: F401 - `prunelab.hold_masks`
from prunelab.training.meter import Meter
from prunelab.training.schedule import Schedule

METHODS = resources.files("prunelab.conf") / "pruning"


@dataclass
class Pruned:
    """What `prune` gives back: the pruned model, its masks ({} when channels were removed), and its
    `weight_sparsity` and `param_sparsity` (as in results.csv; see `prunelab.results`)."""

    model: nn.Module
    masks: Masks
    weight_sparsity: float
    param_sparsity: float


def methods() -> list[str]:
    """The names `prune` takes: the options of the `pruning` config group."""
    return sorted(p.name.removesuffix(".yaml") for p in METHODS.iterdir() if p.name.endswith(".yaml"))


def pruner(method: str, input_shape: Sequence[int] | None = None, **settings) -> Pruner:
    """The pruner of `pruning=<method>`, with `settings` in place of the option's own (e.g. scope="layer"); a
    ConfigError names a setting the method does not have, or of the wrong type, and lists the settings."""
    if method not in methods():
        raise ConfigError("method", f"unknown method {method!r}", f"use one of {methods()}")
    node = OmegaConf.merge(OmegaConf.load(str(METHODS / f"{method}.yaml")), settings)
    root = OmegaConf.create({"pruning": node, "dataset": {"input_shape": list(input_shape or [])}})
    check_node("pruning", OmegaConf.to_container(root.pruning, resolve=True))
    return build(root.pruning)


def prune(model: nn.Module, method: str = "magnitude", target: float = 0.9, batches: Iterable | None = None,
          seed: int = 0, inplace: bool = False, **settings) -> Pruned:
    """Prune `model` once to `target` in [0, 1) with `method` (an option of the `pruning` group; `settings`
    override it, as `pruning.<setting>=` does).

    Unstructured methods zero weights and return their masks; structural ones return the model with its
    channels removed (target = fraction of channels), or with `remove=False` zeroed and masked. `batches`
    feed the methods that score with data and trace structural models: a list of (inputs, labels), or of
    input tensors alone for the methods that need no loss. `model` is left as it was unless `inplace`.
    Keep the masks while you fine-tune with `hold_masks(out.model, out.masks, optimizer)`.
    """
    if not 0.0 <= target < 1.0:
        raise ConfigError("target", f"{target} is not in [0, 1)", "give the fraction to prune, e.g. target=0.9")
    model = model if inplace else copy.deepcopy(model)
    data = list(batches) if batches is not None else None
    unlabelled = bool(data) and all(isinstance(b, torch.Tensor) for b in data)
    shape = list((data[0] if unlabelled else data[0][0]).shape[1:]) if data else None
    chosen = pruner(method, shape, **settings)
    if chosen.needs_gradual:
        raise ConfigError("method", f"{method} scores weights while they train", "prune with pruning_callback "
                          "and a gradual schedule, or run `prunelab schedule=agp`")
    params = chosen.parameters(model)
    chosen.check(model, [target])
    dense_weights, dense_params = sum(w.numel() for w in chosen.weights(model).values()), count_parameters(model)[0]
    ctx = ScoreContext(batches=lambda: _no_labels(method) if unlabelled else iter(data or _no_batches(method)),
                       loss=F.cross_entropy, generator=prune_generator(seed, 1),
                       unlabelled=(lambda: iter(data)) if unlabelled else None)
    masks = chosen.prune(model, full_masks(params), target, ctx)
    return Pruned(model, masks, weight_sparsity(chosen.weights(model), dense_weights),
                  param_sparsity(model, dense_params))


def _no_batches(method: str):
    raise ConfigError("batches", f"{method} scores with training data or traces the model",
                      "pass batches=[(inputs, labels), ...], or [inputs, ...] where no loss is needed")


def _no_labels(method: str):
    raise ConfigError("batches", f"{method} scores with the loss, which needs labels",
                      "pass batches=[(inputs, labels), ...]")


def pruning_callback(pruner, schedule: Schedule, name: str, family: str = "other", seed: int = 0,
                     folder: Path | str | None = None, loggers: Sequence[Logger] = ()) -> PruningCallback:
    """A `PruningCallback` for your own Lightning Trainer and LightningModule (see `training.callback`).

    Train for `schedule.total_epochs` epochs. Each stage's results row (labelled `name`, `family`, `seed`)
    goes to `loggers` and, with `folder`, to results.csv and layer_sparsity.csv there, as in a prunelab
    run; `callback.engine.rows` holds them too. A WandbLogger gets the command's W&B layout (stage metrics
    against `stage/param_sparsity`, the curve table, the summary scalars), and each stage's line is printed.
    """
    _show_stage_lines()
    sinks = [RunFolder(RunPaths(Path(folder)))] if folder is not None else []
    labels = {"method": name, "family": family, "seed": seed}
    return PruningCallback(StageEngine(pruner, schedule, labels, meter=Meter(),
                                       sinks=[*sinks, LoggerSink(list(loggers))]))


def _show_stage_lines() -> None:
    """Let prunelab's INFO lines (one per stage) through, on stderr when logging is not configured: Lightning's
    rule for its own logger. A level or handler the user gave the `prunelab` logger is kept."""
    logger = logging.getLogger("prunelab")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    if not logger.handlers and not logging.getLogger().hasHandlers():
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("prunelab: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
