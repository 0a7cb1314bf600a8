"""The classification module's loss: cross-entropy against one-hot targets, smoothed by task.module.label_smoothing."""

import math

import pytest
import torch

from prunelab.errors import ConfigError
from prunelab.runs.spec import from_config
from prunelab.training.module import ClassificationModule
from tests.helpers import compose_config


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_training_loss_is_cross_entropy_against_smoothed_targets_by_hand(smoothing):
    weights = torch.tensor([[2.0, 0.0, 1.0]])  # a linear model whose logits for input [1] are 2, 0, 1
    model = torch.nn.Linear(1, 3, bias=False)
    model.weight.data = weights.T.clone()
    module = ClassificationModule(model, None, None, num_classes=3, label_smoothing=smoothing)
    loss, samples = module.loss((torch.ones(1, 1), torch.tensor([0])))
    log_z = math.log(math.exp(2) + math.exp(0) + math.exp(1))
    log_p = [2 - log_z, 0 - log_z, 1 - log_z]
    # target: 1 - smoothing on the label plus smoothing / 3 on every class
    targets = [1 - smoothing + smoothing / 3, smoothing / 3, smoothing / 3]
    assert samples == 1 and loss.item() == pytest.approx(-sum(t * lp for t, lp in zip(targets, log_p)), rel=1e-6)


@pytest.mark.parametrize("value", [-0.1, 1.0])
def test_label_smoothing_outside_0_to_1_is_one_line_naming_it(value, tmp_path):
    with pytest.raises(ConfigError, match="task.module.label_smoothing") as error:
        from_config(compose_config(f"task.module.label_smoothing={value}"), tmp_path)
    assert "\n" not in str(error.value)
