"""model=causal_lm and the model sizes: Hugging Face causal LMs from a saved folder or from a config, token ids in
and logits out; their decoder parts in forward order; their prunable weights; the bad inputs."""

import pytest
import torch
from torch import nn

from prunelab.config import build
from prunelab.errors import ConfigError
from prunelab.models import CausalLM, causal_lm, decoder
from prunelab.pruning import Magnitude, UnstructuredPruner
from tests.helpers import LM_DATA, compose_config, language_models, tiny_llama

SIZES = [m for m in language_models() if m != "causal_lm"]  # the sizes trained from scratch


def ids(batch: int = 2, length: int = 8, vocab: int = 256) -> torch.Tensor:
    return torch.randint(vocab, (batch, length), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("size", SIZES)
def test_every_size_builds_a_causal_lm_over_the_datasets_vocabulary(size):
    cfg = compose_config(f"model={size}", "dataset=text", "dataset.vocab_size=300")
    model = build(cfg.model)
    assert isinstance(model, CausalLM) and model.vocab_size == 300 and not model.lm.config.use_cache
    assert model(ids(vocab=300)).shape == (2, 8, 300)


@pytest.mark.parametrize("size", ["llama_tiny", "gpt2_tiny", "opt_tiny"])
def test_the_prunable_weights_are_the_decoder_linears_not_embeddings_or_the_head(size):
    model = build(compose_config(f"model={size}", *LM_DATA).model)
    weights = UnstructuredPruner(Magnitude()).parameters(model)
    linears = {f"{n}.weight" for n, m in decoder(model).layers.named_modules(prefix=_layers_prefix(model))
               if isinstance(m, nn.Linear)}
    assert set(weights) == linears and len(linears) >= 8  # 2 layers of 4 (or 7) projections


def _layers_prefix(model: CausalLM) -> str:
    layers = decoder(model).layers
    return next(n for n, m in model.named_modules() if m is layers)


def test_gpt2_conv1d_layers_become_the_linears_they_compute():
    from transformers import AutoConfig, AutoModelForCausalLM

    settings = {"n_embd": 32, "n_layer": 2, "n_head": 4, "vocab_size": 256, "n_positions": 64,
                "bos_token_id": None, "eos_token_id": None}
    torch.manual_seed(0)
    reference = AutoModelForCausalLM.from_config(AutoConfig.for_model("gpt2", **settings)).eval()
    torch.manual_seed(0)
    model = causal_lm(config={"model_type": "gpt2", **settings}).eval()
    assert not any(type(m).__name__ == "Conv1D" for m in model.modules())
    assert model.lm.transformer.h[0].attn.c_attn.weight.shape == (96, 32)  # (out, in), as nn.Linear
    torch.testing.assert_close(model(ids()), reference(input_ids=ids()).logits)


def test_a_folder_saved_with_save_pretrained_loads_through_model_causal_lm(tmp_path):
    saved = tiny_llama()
    saved.lm.save_pretrained(tmp_path / "tiny")
    cfg = compose_config("model=causal_lm", f"model.path={tmp_path / 'tiny'}", *LM_DATA)
    loaded = build(cfg.model)
    assert isinstance(loaded, CausalLM) and loaded.lm.dtype == torch.float32
    torch.testing.assert_close(loaded.eval()(ids()), saved.eval()(ids()))


@pytest.mark.parametrize("size", ["llama_tiny", "gpt2_tiny", "opt_tiny"])
def test_embeddings_then_layers_then_head_compute_the_models_forward(size):
    """What block-sequential pruning relies on: the first layer's inputs captured (keyword arguments included, e.g.
    LLaMA's position embeddings), every layer run on its predecessor's output tensor, then the head."""
    model = build(compose_config(f"model={size}", *LM_DATA).model).eval()
    parts = decoder(model)
    assert len(parts.layers) == 2 and "lm_head" in parts.head
    assert (parts.rotary is not None) == (size == "llama_tiny")
    captured = {}

    def take(module, args, kwargs):
        captured.update(hidden=args[0] if args else kwargs.pop("hidden_states"), kwargs=kwargs)
        raise StopIteration

    hook = parts.layers[0].register_forward_pre_hook(take, with_kwargs=True)
    with torch.no_grad():
        with pytest.raises(StopIteration):
            model(ids())
        hook.remove()
        hidden = captured["hidden"]
        for layer in parts.layers:
            hidden = layer(hidden, **captured["kwargs"])
            assert isinstance(hidden, torch.Tensor)
        for module in parts.head.values():
            hidden = module(hidden)
        torch.testing.assert_close(hidden, model(ids()))


def test_a_folder_without_a_config_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="holds no config.json") as err:
        causal_lm(path=str(tmp_path))
    assert err.value.setting == "model.path" and "save_pretrained" in err.value.fix


def test_a_hub_name_is_not_downloaded_without_the_download_setting():
    with pytest.raises(ConfigError) as err:
        causal_lm(path="facebook/opt-125m")
    assert err.value.setting == "model.download" and "model.download=true" in err.value.fix


@pytest.mark.parametrize("settings", [{}, {"path": "x", "config": {"model_type": "llama"}}])
def test_a_model_needs_exactly_one_of_a_path_and_a_config(settings):
    with pytest.raises(ConfigError, match="exactly one of"):
        causal_lm(**settings)


def test_an_unknown_model_type_names_the_setting():
    with pytest.raises(ConfigError) as err:
        causal_lm(config={"model_type": "no_such_model"})
    assert err.value.setting == "model.config"
