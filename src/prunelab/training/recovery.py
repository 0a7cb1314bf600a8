"""How the fine-tuning stages after pruning train: every weight (`FullFineTuning`, the default), or low-rank
adapters (`LoRA`, through `peft`) merged back into the pruned weights at the end of each stage, as LLM-Pruner
recovers a pruned LLaMA.

The engine calls `attach` once a stage has pruned (before it builds the stage's optimizer) and `merge` before
the stage is measured; a run resumed in the middle of a stage attaches again before its checkpoint loads.
"""

import fnmatch

from torch import nn

from prunelab.errors import ConfigError
from prunelab.models.causal_lm import CausalLM
from prunelab.models.decoder import linear_weights


class FullFineTuning:
    """Every weight trains in the fine-tuning stages."""

    def check(self, model: nn.Module, gradual: bool) -> None:
        """Nothing to check."""

    def attach(self, model: nn.Module) -> None:
        """Nothing to attach."""

    def merge(self, model: nn.Module) -> None:
        """Nothing to merge."""


class LoRA:
    """Low-rank adapters (Hu et al. 2022) on `target_modules` during each fine-tuning stage, every other weight
    frozen; merged into the weights they adapt (W + alpha / rank * B A) before the stage is measured, and a
    pruned weight's mask applied again, so masks and removed structure are kept.

    `target_modules`: names of Linear layers (a name matches a layer whose name ends in it, as in peft; fnmatch
    patterns allowed); null: every Linear of a causal LM's decoder layers (LLaMA's q, k, v, o, gate, up and down
    projections, GPT-2's c_attn, c_proj and c_fc), LLM-Pruner's choice. `dropout` acts on the adapters' input."""

    def __init__(self, rank: int = 8, alpha: float = 16.0, dropout: float = 0.05,
                 target_modules: list[str] | None = None):
        if rank < 1:
            raise ConfigError("recovery.rank", f"must be >= 1, got {rank}", "use e.g. 8")
        if not 0 <= dropout < 1:
            raise ConfigError("recovery.dropout", f"must be in [0, 1), got {dropout}", "use e.g. 0.05")
        self.rank, self.alpha, self.dropout = rank, alpha, dropout
        self.target_modules = list(target_modules) if target_modules is not None else None
        self._trainable: dict[str, bool] = {}

    def check(self, model: nn.Module, gradual: bool) -> None:
        """Before training: peft installed, a schedule that prunes only between stages, targets that match."""
        try:
            import peft  # noqa: F401 - the `lm` extra
        except ImportError:
            raise ConfigError("recovery", "LoRA needs peft, which is not installed", "pip install 'prunelab[lm]'") from None
        if gradual:
            raise ConfigError("recovery", "LoRA adapters are merged at the end of a stage, but this schedule prunes "
                              "during stages", "use schedule=oneshot or iterative, or recovery=full")
        self._targets(model)

    def attach(self, model: nn.Module) -> None:
        """Put adapters on the target layers of `model` (in place) and freeze every other parameter."""
        from peft import LoraConfig, inject_adapter_in_model

        self._trainable = {n: p.requires_grad for n, p in model.named_parameters()}
        config = LoraConfig(r=self.rank, lora_alpha=self.alpha, lora_dropout=self.dropout,
                            target_modules=self._targets(model))
        inject_adapter_in_model(config, model)
        for name, p in model.named_parameters():
            p.requires_grad = "lora_" in name

    def merge(self, model: nn.Module) -> None:
        """Merge the adapters into their layers and put the plain layers back; a no-op without adapters."""
        from peft.tuners.lora import LoraLayer

        for name, module in list(model.named_modules()):
            if isinstance(module, LoraLayer):
                module.merge()
                parent, _, leaf = name.rpartition(".")
                setattr(model.get_submodule(parent), leaf, module.get_base_layer())
        for name, p in model.named_parameters():
            p.requires_grad = self._trainable.get(name, True)

    def _targets(self, model: nn.Module) -> list[str]:
        """The full names of the Linear layers the adapters go on; a ConfigError for names that match none."""
        linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        if self.target_modules is None:
            if not isinstance(model, CausalLM):
                raise ConfigError("recovery.target_modules", "null chooses a causal LM's decoder layers, and "
                                  f"{type(model).__name__} is not one", "name the Linear layers to adapt")
            return [n.removesuffix(".weight") for n in linear_weights(model)]
        chosen, unmatched = [], []
        for pattern in self.target_modules:
            hits = [n for n in linears if fnmatch.fnmatchcase(n, pattern) or fnmatch.fnmatchcase(n, f"*.{pattern}")]
            chosen += hits
            if not hits:
                unmatched.append(pattern)
        if unmatched:
            leaves = sorted({n.rpartition(".")[2] for n in linears})
            raise ConfigError("recovery.target_modules", f"{unmatched} match no Linear layer of the model",
                              f"use names of its Linear layers, e.g. {leaves[:8]}")
        return sorted(set(chosen))
