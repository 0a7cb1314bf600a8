"""The width of a causal LM's decoder layers: its attention head groups and MLP channels, each with the slices
of every projection it owns, removed physically; and the transformers configs that save the new sizes.

A unit of `attention` is a key-value head with the query heads that share it (LLaMA's grouped-query attention;
GPT-2's heads, one query per key-value head); a unit of `mlp` is an intermediate channel. Torch-pruning's
dependency graph is not used: on a transformers LLaMA (torch-pruning 1.6.1, head pruning with `num_heads`) it
ran for more than 10 minutes without yielding a group on a 2-layer model of hidden size 32, so the coupling
of these two layouts is written out here (`couplings`) and the surgery is an index_select per projection.
"""

from dataclasses import dataclass

import torch
from torch import nn

from prunelab.errors import ConfigError
from prunelab.models.decoder import decoder_layers

FAMILIES = ("llama", "gpt2")
KINDS = ("attention", "mlp")


@dataclass(frozen=True)
class Slice:
    """The part of `module` (a Linear, or a transformers Conv1D) that a layer's units own: along its output
    features (`out`, bias included) or input features, viewed as (`blocks`, units, features per unit)."""

    module: nn.Module
    out: bool
    blocks: int = 1


def family(lm: nn.Module) -> str:
    """`llama` for LLaMA-style models (Mistral, Qwen2 and others with q/k/v/o and gate/up/down projections),
    `gpt2`; a ConfigError for models the width surgery does not know."""
    if lm.config.model_type.removeprefix("prunelab_") == "gpt2":
        return "gpt2"
    layers = decoder_layers(lm)
    layer = layers[0] if len(layers) else None
    if all(hasattr(layer, a) for a in ("self_attn", "mlp")) and all(
            hasattr(layer.self_attn, p) for p in ("q_proj", "k_proj", "v_proj", "o_proj")) and all(
            hasattr(layer.mlp, p) for p in ("gate_proj", "up_proj", "down_proj")):
        return "llama"
    raise ConfigError("model", f"width pruning does not know the layers of a {lm.config.model_type} model",
                      f"use a model of the families {list(FAMILIES)}, or depth pruning (pruning=lm_depth_bi)")


def head_dim(lm: nn.Module) -> int:
    """The width of one attention head, which pruning never changes."""
    config = lm.config
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def couplings(layer: nn.Module, fam: str) -> dict[str, list[Slice]]:
    """Per unit kind, the slices of the projections that shrink together with it."""
    if fam == "gpt2":
        attn, mlp = layer.attn, layer.mlp
        return {"attention": [Slice(attn.c_attn, True, 3), Slice(attn.c_proj, False)],
                "mlp": [Slice(mlp.c_fc, True), Slice(mlp.c_proj, False)]}
    attn, mlp = layer.self_attn, layer.mlp
    return {"attention": [Slice(attn.q_proj, True), Slice(attn.k_proj, True), Slice(attn.v_proj, True),
                          Slice(attn.o_proj, False)],
            "mlp": [Slice(mlp.gate_proj, True), Slice(mlp.up_proj, True), Slice(mlp.down_proj, False)]}


def units(layer: nn.Module, fam: str, hd: int) -> dict[str, int]:
    """The layer's key-value head groups and MLP channels."""
    key = layer.attn.split_size if fam == "gpt2" else _features(layer.self_attn.k_proj, True)
    mlp = couplings(layer, fam)["mlp"][0]
    return {"attention": key // hd, "mlp": _features(mlp.module, True)}


def _is_conv1d(module: nn.Module) -> bool:
    return type(module).__name__ == "Conv1D"  # transformers' (in, out) weight layout


def _dim(module: nn.Module, out: bool) -> int:
    """The weight dimension of a module's output (out) or input features."""
    return int(out) if _is_conv1d(module) else int(not out)


def _features(module: nn.Module, out: bool) -> int:
    return module.weight.shape[_dim(module, out)]


def unit_view(s: Slice, tensor: torch.Tensor, count: int, bias: bool = False) -> torch.Tensor:
    """`tensor` (the slice's weight or, with `bias`, its bias) as (count, everything one unit owns)."""
    dim = 0 if bias else _dim(s.module, s.out)
    moved = tensor.movedim(dim, 0)
    return moved.reshape(s.blocks, count, -1, *moved.shape[1:]).transpose(0, 1).reshape(count, -1)


def tensors(s: Slice) -> list[tuple[nn.Parameter, bool]]:
    """The slice's parameters, each with whether it is a bias: the weight, and the bias on the output side."""
    bias = s.module.bias if s.out and s.module.bias is not None else None
    return [(s.module.weight, False)] + ([(bias, True)] if bias is not None else [])


def unit_parameters(layer: nn.Module, fam: str, hd: int) -> dict[str, int]:
    """The parameters one unit of each kind holds (what removing it takes away)."""
    count = units(layer, fam, hd)
    return {kind: sum(p.numel() for s in slices for p, _ in tensors(s)) // count[kind]
            for kind, slices in couplings(layer, fam).items()}


def shrink(layer: nn.Module, fam: str, hd: int, keep: dict[str, list[int]]) -> None:
    """Keep only the units `keep[kind]` (current positions, in order) of the layer: every coupled projection is
    replaced by its selected rows or columns, and GPT-2's attention learns its new split."""
    count = units(layer, fam, hd)
    for kind, kept in keep.items():
        for s in couplings(layer, fam)[kind]:
            size = _features(s.module, s.out)
            index = torch.arange(size, device=s.module.weight.device).view(s.blocks, count[kind], -1)
            index = index[:, torch.as_tensor(kept, dtype=torch.long, device=index.device)].flatten()
            _select(s.module, s.out, index)
    if fam == "gpt2" and "attention" in keep:
        layer.attn.split_size = len(keep["attention"]) * hd
        layer.attn.num_heads = len(keep["attention"])


def _select(module: nn.Module, out: bool, index: torch.Tensor) -> None:
    dim = _dim(module, out)
    with torch.no_grad():
        module.weight = nn.Parameter(module.weight.index_select(dim, index), module.weight.requires_grad)
        if out and module.bias is not None:
            module.bias = nn.Parameter(module.bias.index_select(0, index), module.bias.requires_grad)
    if _is_conv1d(module):
        module.nf = len(index) if out else module.nf
    elif out:
        module.out_features = len(index)
    else:
        module.in_features = len(index)


def layer_widths(lm: nn.Module) -> list[list[int]]:
    """Per decoder layer [query heads, key-value heads, MLP channels]."""
    fam, hd = family(lm), head_dim(lm)
    groups = 1 if fam == "gpt2" else lm.config.num_attention_heads // lm.config.num_key_value_heads
    return [[(n := units(layer, fam, hd))["attention"] * groups, n["attention"], n["mlp"]] for layer in decoder_layers(lm)]


def saved_config(lm: nn.Module):
    """The transformers config that builds `lm` at its present widths: the model's own when no layer has shrunk;
    LLaMA's fields when every layer has the same widths and the head count divides the hidden size; else a
    `prunelab_<family>` config holding each layer's widths (`register` makes transformers load it)."""
    config = lm.config
    if config.model_type.startswith("prunelab_"):
        config = _base_config(lm)
    fam, widths = family(lm), layer_widths(lm)
    dense = _dense_widths(config, fam)
    if all(w == dense for w in widths):
        return config
    settings = config.to_dict()
    heads, kv, channels = widths[0]
    if fam == "llama" and all(w == widths[0] for w in widths) and config.hidden_size % heads == 0:
        # LlamaConfig refuses head counts that do not divide the hidden size, even with head_dim given
        settings.update(num_attention_heads=heads, num_key_value_heads=kv, intermediate_size=channels,
                        head_dim=head_dim(lm))
        return type(config).from_dict(settings)
    settings.pop("model_type", None)
    return register()[fam][0](layer_widths=widths, **settings)


def _dense_widths(config, fam: str) -> list[int]:
    if fam == "gpt2":
        return [config.n_head, config.n_head, config.n_inner or 4 * config.n_embd]
    return [config.num_attention_heads, config.num_key_value_heads, config.intermediate_size]


def _base_config(lm: nn.Module):
    from transformers import AutoConfig

    settings = lm.config.to_dict()
    settings.pop("layer_widths", None)
    return AutoConfig.for_model(settings.pop("model_type").removeprefix("prunelab_"), **settings)


_REGISTERED: dict = {}


def register() -> dict:
    """Register with transformers' Auto classes the `prunelab_llama` and `prunelab_gpt2` model types: LLaMA and
    GPT-2 whose decoder layers each have the widths in the config's `layer_widths` ([query heads, key-value heads,
    MLP channels] per layer), so that `AutoModelForCausalLM.from_pretrained` loads a width-pruned model.
    Returns {family: (config class, model class)}; registering again is a no-op."""
    if _REGISTERED:
        return _REGISTERED
    from transformers import AutoConfig, AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    for fam, base_config, base_model in (("llama", LlamaConfig, LlamaForCausalLM),
                                         ("gpt2", GPT2Config, GPT2LMHeadModel)):
        config_class = type(f"Pruned{base_config.__name__}", (base_config,),
                            {"model_type": f"prunelab_{fam}", "__init__": _config_init(base_config)})
        model_class = type(f"Pruned{base_model.__name__}", (base_model,),
                           {"config_class": config_class, "__init__": _model_init(base_model, fam)})
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        AutoModelForCausalLM.register(config_class, model_class, exist_ok=True)
        _REGISTERED[fam] = (config_class, model_class)
    return _REGISTERED


def _config_init(base):
    def __init__(self, layer_widths: list | None = None, **settings):
        self.layer_widths = layer_widths
        base.__init__(self, **settings)
    return __init__


def _model_init(base, fam: str):
    def __init__(self, config):
        base.__init__(self, config)
        hd = head_dim(self)
        groups = 1 if fam == "gpt2" else config.num_attention_heads // config.num_key_value_heads
        for layer, (heads, kv, channels) in zip(decoder_layers(self), config.layer_widths or []):
            if heads != kv * groups:
                raise ValueError(f"layer_widths: {heads} query heads are not {groups} per key-value head")
            shrink(layer, fam, hd, {"attention": list(range(kv)), "mlp": list(range(channels))})
    return __init__
