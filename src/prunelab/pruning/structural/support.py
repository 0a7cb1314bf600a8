"""Which models structural pruning accepts, and why not: families torch-pruning cannot prune, a size limit,
and BatchNorm for the methods that rank or penalise its scales."""

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from prunelab.errors import ConfigError
from prunelab.models.causal_lm import CausalLM

_UNSTRUCTURED = "use an unstructured method (e.g. pruning=magnitude) or another model"
# Model families whose channels torch-pruning cannot remove, by class, with why; measured over torchvision's
# classification models by tests/structural_zoo.py (docs/structural_zoo.md).
REFUSED = {
    "ShuffleNetV2": "its channel shuffle splits channels into groups that torch-pruning's dependency graph does "
                    "not follow (removal ends in a division by zero)",
    "SwinTransformer": "torch-pruning's dependency graph of its shifted-window attention does not finish "
                       "(swin_t stopped at its recursion limit after 10 minutes, swin_v2_t ran past 10 minutes)",
    "MaxVit": "torch-pruning does not finish with its window and grid attention, whose relative position bias "
              "tables it cannot place (maxvit_t stopped after 5 minutes; convnets of its size take ~10 s)",
}
# Larger models are refused for their size: the sweep does not check them (vit_h_14, regnet_y_128gf).
MAX_PARAMETERS = 500_000_000


def check_model(model: nn.Module) -> None:
    """A ConfigError naming `model` when it belongs to a family (or size) structural pruning refuses, or naming
    `pruning` for a language model (its pruners: `prunelab.pruning.width` and `prunelab.pruning.depth`)."""
    if isinstance(model, CausalLM):
        raise ConfigError("pruning", "the channel methods prune CNNs and vision transformers, not a language model",
                          "remove heads and MLP channels (pruning=lm_width_taylor, lm_width_l2 or lm_width_random) "
                          "or whole decoder layers (pruning=lm_depth_bi, lm_depth_angular or lm_depth_random)")
    name = type(model).__name__
    if name in REFUSED:
        raise ConfigError("model", f"{name} cannot be pruned structurally: {REFUSED[name]}", _UNSTRUCTURED)
    count = sum(p.numel() for p in model.parameters())
    if count > MAX_PARAMETERS:
        raise ConfigError("model", f"{name} has {count / 1e6:.0f}M parameters, over the {MAX_PARAMETERS / 1e6:.0f}M"
                          " structural pruning accepts (models this size are not checked)", _UNSTRUCTURED)


def check_batchnorm(model: nn.Module) -> None:
    """A ConfigError when `model` has no BatchNorm scales for a method that ranks or penalises them."""
    if not any(isinstance(m, _BatchNorm) for m in model.modules()):
        raise ConfigError("pruning", f"{model.__class__.__name__} has no BatchNorm scales to rank or penalise",
                          "use a model with BatchNorm (e.g. model=digits_cnn) or pruning=l1_filter")
