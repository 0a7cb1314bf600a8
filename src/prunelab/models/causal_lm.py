"""Hugging Face causal language models: loaded with `from_pretrained` from a folder, or built from a config to
train from scratch; wrapped so that the forward takes token ids and returns logits.

transformers is imported when a model is built, not with this module: the meter imports it in every run.
"""

import copy
from pathlib import Path

import torch
from torch import nn

from prunelab.errors import ConfigError
from prunelab.models import width

_CONV1D = "prunelab_conv1d"  # marks an nn.Linear that replaced a transformers Conv1D
_FOLDER = "give a folder saved with save_pretrained (its config.json and weights)"


class CausalLM(nn.Module):
    """A transformers causal LM, `lm`: the forward takes (batch, length) token ids and returns (batch, length,
    vocabulary) next-token logits, with no key-value cache (`use_cache=False`)."""

    def __init__(self, lm: nn.Module):
        super().__init__()
        lm.config.use_cache = False
        self.lm = lm

    @property
    def vocab_size(self) -> int:
        """The token ids the model embeds: its input embedding's rows."""
        return self.lm.get_input_embeddings().num_embeddings

    @property
    def max_positions(self) -> int:
        """The longest sequence the model's position embeddings are made for (`max_position_embeddings`)."""
        return int(self.lm.config.max_position_embeddings)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lm(input_ids=ids, use_cache=False).logits


def causal_lm(path: str | None = None, config: dict | None = None, download: bool = False) -> CausalLM:
    """A causal LM: exactly one of `path` and `config`.

    `path`: a folder saved with `save_pretrained`, loaded in float32 by `AutoModelForCausalLM.from_pretrained`
    with `local_files_only=True`, so an offline run never waits on the network; a Hugging Face hub name is
    downloaded only with `download`. `config`: the settings of a transformers config, `model_type` (llama,
    gpt2, opt, ...) among them, for a new randomly initialised model (the global torch seed decides its weights).
    GPT-2's Conv1D layers become the nn.Linear layers they compute (weights transposed), so that every model's
    prunable layers are Linears with (out, in) weights.
    """
    if (path is None) == (config is None):
        raise ConfigError("model", "give exactly one of model.path (a saved model) and model.config (a new one)",
                          "use model=causal_lm model.path=<folder>, or a size such as model=llama_tiny")
    try:
        import transformers  # noqa: F401 - the `lm` extra
    except ImportError:
        raise ConfigError("model", "transformers is not installed", "pip install 'prunelab[lm]'") from None
    lm = _from_config(dict(config)) if config is not None else _pretrained(path, download)
    _linear_conv1d(lm)
    return CausalLM(lm)


def _from_config(settings: dict) -> nn.Module:
    from transformers import AutoConfig, AutoModelForCausalLM

    kind = settings.pop("model_type", None)
    try:
        config = AutoConfig.for_model(kind, **settings)
        return AutoModelForCausalLM.from_config(config)
    except (ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[0]
        raise ConfigError("model.config", f"transformers cannot build a causal LM from it ({first})",
                          "set model.config.model_type (llama, gpt2, opt, ...) and that config's settings") from None


def _pretrained(path: str, download: bool) -> nn.Module:
    from transformers import AutoModelForCausalLM

    width.register()  # width-pruned models saved by prunelab

    folder = Path(path).expanduser()
    if folder.is_dir() and not (folder / "config.json").is_file():
        raise ConfigError("model.path", f"{folder} holds no config.json", _FOLDER)
    if not folder.is_dir() and not download:
        raise ConfigError("model.download", f"is false and model.path={path!r} is not a folder, so it would be "
                          "downloaded from the Hugging Face hub",
                          f"set model.download=true to download it, or {_FOLDER}")
    try:
        return AutoModelForCausalLM.from_pretrained(str(folder) if folder.is_dir() else path, dtype=torch.float32,
                                                    local_files_only=not download)
    except (OSError, ValueError) as err:  # no weights, not a causal LM, no network
        first = str(err).strip().splitlines()[0]
        raise ConfigError("model.path", f"transformers cannot load a causal LM from {path!r} ({first})",
                          _FOLDER) from None


def _linear_conv1d(lm: nn.Module) -> None:
    """Replace transformers' Conv1D layers (GPT-2's; weight (in, out)) by the equivalent nn.Linear."""
    from transformers.pytorch_utils import Conv1D

    for name, module in list(lm.named_modules()):
        if isinstance(module, Conv1D):
            linear = nn.Linear(*module.weight.shape, device=module.weight.device, dtype=module.weight.dtype)
            with torch.no_grad():
                linear.weight.copy_(module.weight.T)
                linear.bias.copy_(module.bias)
            setattr(linear, _CONV1D, True)
            parent, _, leaf = name.rpartition(".")
            setattr(lm.get_submodule(parent), leaf, linear)


def save_pretrained(model: CausalLM, folder) -> None:
    """Write `model` in transformers' layout to `folder`, for `AutoModelForCausalLM.from_pretrained` (and
    `causal_lm(path=folder)`): a copy whose Linears that replaced Conv1D layers (GPT-2's) are Conv1D again, with
    the config of its present widths (`models.width.saved_config`: a width-pruned model's new sizes)."""
    from transformers.pytorch_utils import Conv1D

    lm = copy.deepcopy(model.lm)
    lm.config = width.saved_config(lm)
    if lm.config.model_type.startswith("prunelab_"):
        lm.__class__ = width.register()[width.family(lm)][1]  # a subclass holding no state of its own
    for name, module in list(lm.named_modules()):
        if getattr(module, _CONV1D, False):
            conv = Conv1D(module.out_features, module.in_features).to(module.weight.device, module.weight.dtype)
            with torch.no_grad():
                conv.weight.copy_(module.weight.T)
                conv.bias.copy_(module.bias)
            parent, _, leaf = name.rpartition(".")
            setattr(lm.get_submodule(parent), leaf, conv)
    lm.save_pretrained(str(folder))
