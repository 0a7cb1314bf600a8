"""Compute metrics: MACs against hand counts, MACs of nonzero weights, latency, the pruned fraction."""

import pytest
import torch
import torchvision
from torch import nn

from prunelab.errors import ConfigError
from prunelab.models.attention import split_attention
from prunelab.pruning.masks import full_masks, param_sparsity, sparsity, weight_sparsity
from prunelab.training.meter import Meter, layer_costs
from prunelab.training.recording import layer_rows


def total(costs, field="macs"):
    return sum(getattr(c, field) for c in costs.values())


def test_macs_of_a_tiny_conv_net_equal_the_hand_count():
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3),  # 1x5x5 -> 2x3x3: 18 outputs x (1*3*3) = 162
        nn.Conv2d(2, 4, 1, groups=2),  # 4x3x3: 36 outputs x (2/2 * 1 * 1) = 36
        nn.ReLU(), nn.Flatten(),
        nn.Linear(36, 5),  # 5 outputs x 36 = 180
    )
    costs = layer_costs(net, torch.zeros(1, 1, 5, 5))
    assert {n: c.macs for n, c in costs.items()} == {"0": 162, "1": 36, "4": 180}
    assert {n: c.params for n, c in costs.items()} == {"0": 18, "1": 4, "4": 180}


def test_nonzero_macs_of_a_half_sparse_linear_are_half():
    lin = nn.Linear(8, 6)
    with torch.no_grad():
        lin.weight.view(-1)[::2] = 0
    (cost,) = layer_costs(lin, torch.zeros(1, 8)).values()
    assert cost.macs == 48 and cost.nonzero_macs == 24 and cost.nonzero == 24


def test_resnet18_at_224_has_the_published_1_82_gmacs():
    model = torchvision.models.resnet18()
    assert total(layer_costs(model, torch.zeros(1, 3, 224, 224))) == pytest.approx(1.82e9, rel=0.01)


def test_attention_macs_are_the_same_before_and_after_splitting_the_projections():
    torch.manual_seed(0)
    vit = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4,
                                               hidden_dim=64, mlp_dim=128, num_classes=10)
    x = torch.zeros(1, 3, 32, 32)
    before = total(layer_costs(vit, x))
    n, e = 17, 64  # 16 patches + class token; per block: qkv 3*n*e*e, two products 2*n*n*e, output n*e*e
    blocks = before - total(layer_costs(vit.conv_proj, x)) - 10 * e  # minus the patch conv and the 10-class head
    assert blocks == 2 * (4 * n * e * e + 2 * n * n * e + 2 * n * e * 128)
    split_attention(vit)
    assert total(layer_costs(vit, x)) == before


def test_meter_reports_ratios_against_the_dense_row_and_a_positive_latency():
    lin = nn.Sequential(nn.Flatten(), nn.Linear(8, 6))
    meter = Meter(latency_batch_size=2, latency_repeats=3, latency_warmup=1)
    dense, _ = meter.measure(lin, [8], params=54, nonzero=54, dense=None)
    assert dense["compression"] == 1.0 and dense["theoretical_speedup"] == 1.0 and dense["latency_ms"] > 0
    with torch.no_grad():
        lin[1].weight.view(-1)[:36] = 0
    sparse, costs = meter.measure(lin, [8], params=54, nonzero=18, dense={"params": 54, **dense})
    assert sparse["nonzero_macs"] == 12 and sparse["theoretical_speedup"] == 4.0 and sparse["compression"] == 3.0
    (row,) = layer_rows(1, costs, {"1": 48})
    assert row == {"stage": 1, "layer": "1", "params": 48, "nonzero_params": 12, "sparsity": 0.75}


@pytest.mark.parametrize("key", ["latency_batch_size", "latency_repeats", "latency_warmup"])
def test_bad_meter_settings_are_config_errors(key):
    with pytest.raises(ConfigError, match=f"metrics.{key}"):
        Meter(**{key: -1})


def test_weight_sparsity_counts_zeroed_and_removed_weights_of_the_dense_count():
    params = {"a": torch.ones(4, 5), "b": torch.ones(10)}
    masks = full_masks(params)
    masks["a"][:2] = False
    params["a"][:2] = 0
    assert weight_sparsity(params) == sparsity(masks) == pytest.approx(10 / 30)
    shrunk = {"a": torch.ones(2, 5), "b": torch.ones(10)}  # half of a's rows removed, no masks
    assert weight_sparsity(shrunk, 30) == pytest.approx(10 / 30)
    params["a"][:2] = float("nan")  # a diverged run: what the masks prune still counts as pruned
    assert weight_sparsity(params, 30, masks) == pytest.approx(10 / 30)


def test_param_sparsity_counts_every_tensor_against_the_dense_model():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))  # 15 + 8 = 23 parameters
    assert param_sparsity(model) == 0.0
    with torch.no_grad():
        model[0].weight[:2] = 0  # 8 zeroed
    assert param_sparsity(model) == pytest.approx(8 / 23)
    small = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Linear(1, 2))  # 5 + 4 = 9 left of 23
    assert param_sparsity(small, 23) == pytest.approx(1 - 9 / 23)


def test_layer_table_reaches_wandb_once_per_stage(tmp_path):
    from omegaconf import OmegaConf

    from prunelab.tracking import loggers, sink
    from tests.helpers import compose_config

    config = OmegaConf.to_container(compose_config(), resolve=True)
    logger = loggers.wandb_logger(save_dir=str(tmp_path), run_config=config, mode="offline")
    for stage in (0, 1):
        sink.log_layer_table([logger], stage, [{"stage": stage, "layer": "0", "params": 4, "sparsity": 0.5}])
    logger.experiment.finish()
    files = tmp_path.glob("wandb/offline-run-*/files/media/table/layers/*.table.json")
    tables = sorted(p.name.split("_")[1] for p in files)
    assert tables == ["0", "1"]
