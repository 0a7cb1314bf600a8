"""OWL: outlier ratios and layer densities against hand computations and the official formula; every method that
takes it prunes each decoder layer of a tiny LLaMA at its own sparsity and the Linears at the target exactly."""

import numpy as np
import pytest
import torch
from torch import nn

from prunelab.config import build
from prunelab.errors import ConfigError
from prunelab.pruning import UnstructuredPruner
from prunelab.pruning.calibration import Calibration
from prunelab.pruning.criteria import Magnitude
from prunelab.pruning.masks import full_masks
from prunelab.pruning.owl import OWL, check_densities, layer_groups, outlier_ratio, outlier_ratios, owl_densities
from prunelab.pruning.sparsegpt import SparseGPT
from prunelab.pruning.wanda import WandaPruner
from prunelab.runs import schemas
from tests.helpers import LM, TINY, compose_config, ctx, options, prepare, tiny_llama, tiny_net

TARGET, LAMDA, M = 0.6, 0.08, 5.0


def official_sparsities(ratios: list[float], sparsity_ratio: float, lamda: float) -> np.ndarray:
    """luuyin/OWL lib/prune_all.py (prune_mag_outlier, prune_wanda_outlier): all_layer_ratio -> layer sparsity."""
    all_layer_ratio = np.array(ratios)
    all_layer_ratio = ((all_layer_ratio - all_layer_ratio.min()) * (1 / (all_layer_ratio.max() - all_layer_ratio.min())
                                                                     * lamda * 2))
    all_layer_ratio = all_layer_ratio - np.mean(all_layer_ratio) + (1 - sparsity_ratio)
    return 1 - all_layer_ratio


def test_the_outlier_ratio_counts_the_scores_above_m_times_their_mean_over_all_tensors_together():
    a, b = torch.tensor([[1.0, 1.0], [1.0, 1.0]]), torch.tensor([16.0, 0.0, 8.0, 4.0])  # mean 32 / 8 = 4
    assert outlier_ratio([a, b], 1.5) == 2 / 8  # above 6: 16 and 8
    assert outlier_ratio([a, b], 2.0) == 1 / 8  # above 8 (strictly): 16
    ratios = outlier_ratios({"x": a, "y": b, "z": a}, {"x": 0, "y": 1, "z": 0}, 1.5)
    assert ratios == {0: 0.0, 1: 1 / 4}  # group 1 alone: mean 7, above 10.5: 16


def test_densities_are_the_ratios_min_max_normalised_and_shifted_to_the_target_by_hand():
    densities = owl_densities({0: 0.1, 1: 0.3, 2: 0.2}, {0: 5, 1: 5, 2: 5}, target=0.5, lamda=0.1)
    # spread over [0, 0.2]: 0, 0.2, 0.1; mean 0.1; more outliers -> denser
    assert densities == pytest.approx({0: 0.4, 1: 0.6, 2: 0.5})


def test_densities_of_equal_layers_are_the_official_formulas():
    ratios = [0.9, 3.1, 2.4, 0.7, 5.0, 1.2]
    ours = owl_densities(dict(enumerate(ratios)), dict.fromkeys(range(6), 7), TARGET, LAMDA)
    np.testing.assert_allclose([1 - ours[i] for i in range(6)], official_sparsities(ratios, TARGET, LAMDA))
    scaled = owl_densities(dict(enumerate(100 * np.array(ratios))), dict.fromkeys(range(6), 7), TARGET, LAMDA)
    assert scaled == pytest.approx(ours)  # the official percentages give the same densities


def test_densities_of_unequal_layers_meet_the_target_as_a_weighted_mean():
    sizes = {"a": 100, "b": 300}
    densities = owl_densities({"a": 0.0, "b": 1.0}, sizes, TARGET, 0.1)
    # spread 0 and 0.2, weighted mean (0 * 100 + 0.2 * 300) / 400 = 0.15
    assert densities == pytest.approx({"a": 0.4 - 0.15, "b": 0.4 + 0.05})
    assert sum(densities[g] * sizes[g] for g in sizes) / 400 == pytest.approx(1 - TARGET)


def test_equal_ratios_leave_every_layer_at_the_target():
    assert owl_densities({0: 0.2, 1: 0.2}, {0: 3, 1: 9}, TARGET, LAMDA) == pytest.approx({0: 0.4, 1: 0.4})


def test_decoder_layers_group_their_linears_and_other_models_group_each_layer_alone():
    model = tiny_llama()
    params = UnstructuredPruner(Magnitude()).parameters(model)
    groups = layer_groups(model, params)
    assert len(params) == 14 and sorted(set(groups.values())) == [0, 1]
    assert all(f".layers.{groups[n]}." in n for n in params)
    net = tiny_net()
    assert layer_groups(net, ["0.weight", "3.weight"]) == {"0.weight": "0.weight", "3.weight": "3.weight"}


def lm_data(n: int = 8, length: int = 16, seed: int = 1) -> list:
    """Seeded windows of token ids for the tiny LLaMA, with next-token targets."""
    ids = torch.randint(256, (n, length + 1), generator=torch.Generator().manual_seed(seed))
    return [(ids[:4, :-1], ids[:4, 1:]), (ids[4:, :-1], ids[4:, 1:])]


def hand_sparsities(model: nn.Module, params: dict, data: list) -> dict[int, float]:
    """Each decoder layer's OWL sparsity by hand: |W| * ||X|| from hooks on the dense model, D_l, the official formula."""
    inputs = {n: [] for n in params}
    modules = {n: model.get_submodule(n.rpartition(".")[0]) for n in params}
    handles = [modules[n].register_forward_pre_hook(lambda _, args, n=n: inputs[n].append(args[0].detach()))
               for n in params]
    with torch.no_grad():
        model(torch.cat([x for x, _ in data]))
    for h in handles:
        h.remove()
    ratios = []
    for layer in (0, 1):
        scores = [params[n].detach().abs() * torch.cat(inputs[n]).reshape(-1, params[n].shape[1]).pow(2).sum(0).sqrt()
                  for n in params if f".layers.{layer}." in n]
        flat = torch.cat([s.flatten() for s in scores])
        ratios.append(float((flat > M * flat.mean()).float().mean()))
    assert ratios[0] != ratios[1]  # the layers differ, so the test can tell them apart
    return dict(enumerate(official_sparsities(ratios, TARGET, LAMDA)))


def owl() -> OWL:
    return OWL(Calibration(num_samples=8, batch_size=8), m=M, lamda=LAMDA)


PRUNERS = {
    "magnitude_layer": lambda: UnstructuredPruner(Magnitude(), scope="layer", owl=owl()),
    "magnitude_row": lambda: UnstructuredPruner(Magnitude(), scope="row", owl=owl()),
    "wanda_sequential": lambda: WandaPruner(Calibration(num_samples=8), owl=owl()),
    "wanda_one_pass": lambda: WandaPruner(Calibration(num_samples=8), sequential=False, scope="layer", owl=owl()),
    "sparsegpt": lambda: SparseGPT(Calibration(num_samples=8), block_size=16, owl=owl()),
}


@pytest.mark.parametrize("method", PRUNERS)
def test_each_method_prunes_each_decoder_layer_at_its_owl_sparsity_and_the_linears_at_the_target(method):
    model, data = tiny_llama(), lm_data()
    pruner = PRUNERS[method]()
    params = pruner.parameters(model)
    expected = hand_sparsities(model, params, data)
    masks = pruner.prune(model, full_masks(params), TARGET, ctx(data=data))
    assert set(masks) == set(params) and all(".layers." in n for n in masks)
    total = sum(m.numel() for m in masks.values())
    assert sum(int((~m).sum()) for m in masks.values()) == round(TARGET * total)  # exactly the target
    for name, mask in masks.items():
        layer = 0 if ".layers.0." in name else 1
        assert 1 - mask.float().mean() == pytest.approx(expected[layer], abs=2 / mask.numel())
        assert torch.all(params[name][~mask] == 0)
        if method == "magnitude_row":
            rows = 1 - mask.float().mean(1)
            assert rows.max() - rows.min() <= 1 / mask.shape[1] + 1e-6
    low, high = sorted(expected.values())
    assert high - low == pytest.approx(2 * LAMDA)  # two layers: the target -/+ lambda


def test_the_sparsities_are_whole_counts_that_sum_to_the_target():
    model, data = tiny_llama(), lm_data()
    params = UnstructuredPruner(Magnitude()).parameters(model)
    sparsities = owl()(model, params, TARGET, ctx(data=data))
    counts = {n: sparsities[n] * p.numel() for n, p in params.items()}
    assert all(c == pytest.approx(round(c), abs=1e-6) for c in counts.values())
    assert round(sum(counts.values())) == round(TARGET * sum(p.numel() for p in params.values()))


def test_without_owl_every_parameter_is_at_the_target():
    model = tiny_llama()
    pruner = UnstructuredPruner(Magnitude(), scope="layer")
    params = pruner.parameters(model)
    assert pruner.sparsities(model, params, full_masks(params), TARGET, ctx()) == dict.fromkeys(params, TARGET)


def test_unequal_layers_of_a_classifier_are_their_own_owl_layers_and_meet_the_target_exactly():
    net = nn.Sequential(nn.Linear(12, 40), nn.ReLU(), nn.Linear(40, 8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.randn(32, 12, generator=torch.Generator().manual_seed(0)) ** 3  # heavy tails: outliers
    pruner = UnstructuredPruner(Magnitude(), scope="layer", owl=OWL(Calibration(num_samples=32), lamda=0.2))
    params = pruner.parameters(net)
    masks = pruner.prune(net, full_masks(params), 0.5, ctx(data=[(x, None)]))
    pruned = {n: int((~m).sum()) for n, m in masks.items()}
    assert sum(pruned.values()) == round(0.5 * (12 * 40 + 40 * 8))
    assert pruned["0.weight"] / 480 != pytest.approx(pruned["2.weight"] / 320, abs=0.01)  # uneven, yet exact


@pytest.mark.parametrize("option", options("owl"))
@pytest.mark.parametrize("method", ["magnitude", "wanda", "sparsegpt"])
def test_every_owl_option_passes_the_schema_and_builds_its_pruner(option, method):
    cfg = compose_config(*LM, f"pruning={method}", f"owl={option}", "pruning.scope=layer")
    schemas.check(cfg)
    pruner = build(cfg.pruning)
    assert (pruner.owl is None) == ("owl" not in cfg.pruning)
    if option == "none":  # no setting added: the runs' settings and identities stay as they were
        assert cfg.pruning == compose_config(*LM, f"pruning={method}", "pruning.scope=layer").pruning
    else:
        assert isinstance(pruner.owl, OWL) and (pruner.owl.m, pruner.owl.lamda) == (5.0, 0.08)


@pytest.mark.parametrize("overrides, setting, says", [
    (["pruning=wanda", "pruning.pattern='2:4'"], "pruning.owl", "n:m or block"),
    (["pruning=magnitude", "pruning.pattern=block", "pruning.scope=layer"], "pruning.owl", "n:m or block"),
    (["pruning=magnitude"], "pruning.owl", "scope=global"),
    (["pruning=wanda", "pruning.scope=erk"], "pruning.owl", "scope=erk"),
    (["pruning=wanda", "pruning.owl.m=0"], "pruning.owl.m", "must be > 0"),
    (["pruning=wanda", "pruning.owl.lamda=-0.1"], "pruning.owl.lamda", "must be in [0, 0.5] (and at most min(target, 1 - target)"),
    (["pruning=wanda", "pruning.owl.lamda=0.6"], "pruning.owl.lamda", "must be in [0, 0.5] (and at most min(target, 1 - target)"),
    (["pruning=l1_filter"], "pruning.owl", "is not a setting of"),
])
def test_bad_owl_settings_get_one_message_before_any_work(overrides, setting, says, tmp_path):
    with pytest.raises(ConfigError) as err:
        prepare(compose_config(*TINY, "owl=owl", *overrides), tmp_path)
    assert err.value.setting == setting and says in str(err.value) and "Fix:" in str(err.value)


def test_a_lambda_above_the_targets_bound_or_pushing_a_layer_past_dense_is_named():
    model, data = tiny_llama(), lm_data()
    params = UnstructuredPruner(Magnitude()).parameters(model)
    with pytest.raises(ConfigError, match=r"pruning.owl.lamda: 0.08 is above min\(target, 1 - target\) = 0.05"):
        owl()(model, params, 0.05, ctx(data=data))
    with pytest.raises(ConfigError, match="pruning.owl.lamda: 0.4 puts layers at densities {2: 1.0333}"):
        check_densities(owl_densities({0: 0.0, 1: 0.0, 2: 1.0}, dict.fromkeys(range(3), 1), 0.5, 0.4), 0.4, 0.5)
