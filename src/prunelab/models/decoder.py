"""A causal LM's parts in the order its forward runs them: what block-sequential pruning walks layer by layer,
and what moves to a device one layer at a time."""

from dataclasses import dataclass

from torch import nn

from prunelab.errors import ConfigError

# model_type: (the decoder stack's path in the transformers model, its layer list, the modules that run before
# the first layer, after the last). LLaMA's layout is shared by Mistral, Qwen2 and others (see `decoder`).
_LLAMA = ("model", "layers", ("embed_tokens", "rotary_emb"), ("norm",))
LAYOUTS = {
    "llama": _LLAMA,
    "gpt2": ("transformer", "h", ("wte", "wpe", "drop"), ("ln_f",)),
    "opt": ("model.decoder", "layers", ("embed_tokens", "embed_positions", "project_in"),
            ("final_layer_norm", "project_out")),
}


@dataclass(frozen=True)
class Decoder:
    """A causal LM as `embeddings` (by name: token and position embeddings, the rotary embedding), its decoder
    `layers`, and `head` (the final norm, the LM head); modules the model does not have are left out.

    A decoder layer takes the hidden states and the keyword arguments the model passes it (attention mask,
    LLaMA's `position_embeddings` from `rotary`), and returns a tensor of the hidden states, not a tuple."""

    embeddings: dict[str, nn.Module]
    layers: nn.ModuleList
    head: dict[str, nn.Module]

    @property
    def rotary(self) -> nn.Module | None:
        """The rotary embedding whose (cos, sin) every LLaMA-style layer takes as `position_embeddings`."""
        return self.embeddings.get("rotary_emb")


def decoder(model: nn.Module) -> Decoder:
    """The parts of `model` (a prunelab CausalLM) for LLaMA-style models (Mistral, Qwen2 and others whose base
    model holds `embed_tokens`, `layers`, `norm`), GPT-2 and OPT; a ConfigError for other layouts."""
    lm = model.lm
    stack, layers, before, after = _stack(lm)
    return Decoder(_present(stack, before), getattr(stack, layers),
                   {**_present(stack, after), "lm_head": lm.get_output_embeddings()})


def decoder_layers(lm: nn.Module) -> nn.ModuleList:
    """The decoder layers of a transformers causal LM `lm` (see `decoder`)."""
    stack, layers, _, _ = _stack(lm)
    return getattr(stack, layers)


def _stack(lm: nn.Module) -> tuple[nn.Module, str, tuple[str, ...], tuple[str, ...]]:
    """The decoder stack of `lm`, its layer list's name, and the names of what runs before and after it."""
    kind = lm.config.model_type.removeprefix("prunelab_")  # a width-pruned model (`models.width`)
    stack_path, layers, before, after = LAYOUTS.get(kind, _LLAMA)
    try:
        stack = lm.get_submodule(stack_path)
        stack.get_submodule(layers)
    except AttributeError:
        raise ConfigError("model", f"prunelab does not know where the decoder layers of a {kind} model are",
                          f"use a model of one of the layouts {sorted(LAYOUTS)} (or LLaMA's)") from None
    return stack, layers, before, after


def _present(stack: nn.Module, names: tuple[str, ...]) -> dict[str, nn.Module]:
    """The submodules `names` of `stack` that it has (OPT's `project_in` is None unless its widths differ)."""
    return {n: getattr(stack, n) for n in names if getattr(stack, n, None) is not None}


def linear_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """The weights of the Linear layers of `model`'s (a prunelab CausalLM's) decoder layers, by their names in it."""
    layers = decoder(model).layers
    prefix = next(n for n, m in model.named_modules() if m is layers)
    return {f"{prefix}.{n}.weight": m.weight for n, m in layers.named_modules() if isinstance(m, nn.Linear)}
