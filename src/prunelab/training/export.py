"""The final model on disk: a torch.export program that runs without prunelab, and a state file that rebuilds it."""

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from prunelab import atomic
from prunelab.config import build
from prunelab.models.attention import SelfAttention, split_attention
from prunelab.models.causal_lm import CausalLM
from prunelab.modes import eval_mode
from prunelab.paths import RunPaths
from prunelab.pruning.masks import Masks


def traceable(model: nn.Module) -> bool:
    """Whether the final model is also written as torch.export and ONNX programs: not a language model
    (prunelab does not trace those yet; their state file is written)."""
    return not isinstance(model, CausalLM)


def save_model(paths: RunPaths, model: nn.Module, masks: Masks | None, config: dict, input_shape: Sequence[int],
               history: list, program: bool = True) -> None:
    """Write the final model's state file and, with `program`, its torch.export program (eval mode, any batch
    size) into a run folder.

    The state file holds the state_dict, the masks, the resolved run config, and torch-pruning's record
    of removed channels (`history`), which `load_model` replays on the dense model. The program loads
    with `torch.export.load(path).module()` and needs neither prunelab nor the model's code.
    """
    state = {
        "state_dict": model.state_dict(), "masks": masks or {}, "config": config, "input_shape": list(input_shape),
        "pruning_history": history, "split_attention": any(isinstance(m, SelfAttention) for m in model.modules()),
    }
    atomic.save_torch(paths.model_state, state)
    if not program:
        return
    device = next(model.parameters()).device
    example = torch.randn(2, *input_shape, device=device)
    with eval_mode(model):
        program = torch.export.export(model, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    atomic.save_program(paths.model_program, program)


def load_model(path: Path) -> nn.Module:
    """The model of a `model_final_state.pt`: built from its config, its channels removed again, weights loaded."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = build(state["config"]["model"])
    if state["split_attention"]:
        split_attention(model)
    if state["pruning_history"]:
        # here, not at the top: torch-pruning imports timm and W&B, a second of every run's start-up
        from prunelab.pruning.structural.adapter import replay_history
        from prunelab.pruning.structural.surgery import refresh_attributes

        replay_history(model, torch.randn(1, *state["input_shape"]), state["pruning_history"])
        refresh_attributes(model)
    model.load_state_dict(state["state_dict"])
    return model
