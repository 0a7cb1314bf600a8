"""Each criterion against a hand computation on a tiny model; rounds, baselines, layer collapse."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from prunelab.models import MLP
from prunelab.pruning import (
    SNIP,
    GraSP,
    Magnitude,
    Random,
    ScoreContext,
    SynFlow,
    Taylor,
    UnstructuredPruner,
    prunable_parameters,
)
from prunelab.pruning.masks import full_masks, sparsity
from prunelab.pruning.pruner import round_targets


def two_layer(dtype=torch.float32, bias=True, act=nn.Tanh) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 5, bias=bias), act(), nn.Linear(5, 3, bias=bias)).to(dtype)


def batches(n: int = 3, dtype=torch.float32) -> list:
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(6, 4, generator=g, dtype=dtype), torch.randint(0, 3, (6,), generator=g)) for _ in range(n)]


def ctx(data=(), seed: int = 0) -> ScoreContext:
    return ScoreContext(batches=lambda: iter(data), loss=F.cross_entropy, generator=torch.Generator().manual_seed(seed))


def all_weights(net: nn.Module) -> dict:
    return prunable_parameters(net, exclude_output=False)


def hand_gradients(net, data):
    """One tuple of weight gradients per batch, by plain backward()."""
    out = []
    for x, y in data:
        net.zero_grad()
        F.cross_entropy(net(x), y).backward()
        out.append([w.grad.clone() for w in all_weights(net).values()])
    return out


def test_taylor_is_abs_w_times_grad_summed_over_the_batches():
    net, data = two_layer(), batches(3)
    scores = Taylor(num_batches=2)(net, all_weights(net), ctx(data))
    grads = hand_gradients(net, data[:2])  # the third batch is beyond num_batches
    for i, (name, w) in enumerate(all_weights(net).items()):
        expected = sum((w.detach() * g[i]).abs() for g in grads)
        torch.testing.assert_close(scores[name], expected)


def test_snip_is_normalised_abs_grad_times_weight():
    net, data = two_layer(), batches(2)
    scores = SNIP(num_batches=2)(net, all_weights(net), ctx(data))
    grads = hand_gradients(net, data)
    saliency = {n: (w.detach() * (grads[0][i] + grads[1][i])).abs() for i, (n, w) in enumerate(all_weights(net).items())}
    total = sum(s.sum() for s in saliency.values())
    for name, s in saliency.items():
        torch.testing.assert_close(scores[name], s / total)
    assert float(sum(s.sum() for s in scores.values())) == pytest.approx(1.0, abs=1e-6)


def test_grasp_is_theta_times_hessian_gradient_product():
    net, data = two_layer(torch.float64), batches(2, torch.float64)
    T = 200.0
    params = all_weights(net)
    names, shapes = list(params), [p.shape for p in params.values()]
    theta = torch.cat([p.detach().reshape(-1) for p in params.values()])

    def loss(flat):  # the loss of both batches as a function of the flattened weights (biases fixed)
        parts = dict(zip(names, (t.view(s) for t, s in zip(flat.split([s.numel() for s in shapes]), shapes))))
        return sum(F.cross_entropy(functional_call(net, parts, (x,)) / T, y) for x, y in data)

    g = torch.autograd.functional.jacobian(loss, theta)
    hg = torch.autograd.functional.hessian(loss, theta) @ g
    expected = theta * hg  # = -S(-theta) of Wang et al.: the highest theta * Hg are kept
    scores = GraSP(num_batches=2, temperature=T)(net, params, ctx(data))
    torch.testing.assert_close(torch.cat([scores[n].reshape(-1) for n in names]), expected, rtol=1e-9, atol=0)
    assert expected.abs().max() > 0


def test_synflow_is_the_product_of_absolute_weights_path_sum():
    net = two_layer(torch.float64, bias=False, act=nn.Identity)
    w1, w2 = net[0].weight.detach().clone(), net[2].weight.detach().clone()  # h x d, o x h
    scores = SynFlow(input_shape=[4])(net, all_weights(net), ctx())
    # R = 1'|W2||W1|1: dR/dW1[j,i] = sum_k |W2[k,j]|, dR/dW2[k,j] = sum_i |W1[j,i]|
    torch.testing.assert_close(scores["0.weight"], w2.abs().sum(0)[:, None] * w1.abs(), rtol=1e-14, atol=0)
    torch.testing.assert_close(scores["2.weight"], w1.abs().sum(1)[None, :] * w2.abs(), rtol=1e-14, atol=0)
    assert torch.equal(net[0].weight, w1) and torch.equal(net[2].weight, w2), "signs must be kept"


def bn_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 16), nn.ReLU(), nn.Linear(16, 3))


CRITERIA = {"random": Random(), "magnitude": Magnitude(), "taylor": Taylor(2), "snip": SNIP(2), "grasp": GraSP(2),
            "synflow": SynFlow([1, 8, 8])}


@pytest.mark.parametrize("name", CRITERIA)
def test_pruning_only_masks_the_model(name):
    """Weights, biases, BatchNorm statistics and train/eval mode are as before, except for the mask."""
    net = bn_net().train()
    g = torch.Generator().manual_seed(2)
    data = [(torch.randn(5, 1, 8, 8, generator=g), torch.randint(0, 3, (5,), generator=g)) for _ in range(2)]
    state = {k: v.clone() for k, v in net.state_dict().items()}
    masks = UnstructuredPruner(CRITERIA[name], rounds=3).prune(net, full_masks(prunable_parameters(net)),
                                                                0.6, ctx(data))
    assert sparsity(masks) == pytest.approx(0.6, abs=1e-3)
    for k, v in net.state_dict().items():
        expected = state[k] * masks[k] if k in masks else state[k]
        assert torch.equal(v, expected), k
    assert all(m.training for m in net.modules())


def test_rounds_follow_the_exponential_schedule_and_end_at_the_target():
    assert round_targets(0.0, 0.99, 2) == pytest.approx([0.9, 0.99])
    assert round_targets(1.0, 0.875, 2) == [0.875, 0.875]  # everything already pruned: nothing to divide
    steps = round_targets(0.5, 0.9, 10)
    assert steps[-1] == 0.9 and all(a < b for a, b in zip([0.5, *steps], steps))


class MaskedWeightSpy(Magnitude):
    """Magnitude scores that also record how many prunable weights are zero when scored."""

    def __init__(self):
        self.zeros = []

    def __call__(self, model, params, ctx):
        self.zeros.append(sum(int((p == 0).sum()) for p in params.values()))
        return super().__call__(model, params, ctx)


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_rounds_reach_the_exact_count_scoring_the_masked_model(scope):
    net = bn_net()
    params = prunable_parameters(net)
    spy = MaskedWeightSpy()
    start = UnstructuredPruner(Magnitude(), scope).prune(net, full_masks(params), 0.3, ctx())
    masks = UnstructuredPruner(spy, scope, rounds=5).prune(net, start, 0.9, ctx())
    sizes = [m.numel() for m in masks.values()] if scope == "layer" else [sum(m.numel() for m in masks.values())]
    n = sum(sizes)
    counts = [sum(round(t * k) for k in sizes) for t in [0.3, *round_targets(sparsity(start), 0.9, 5)]]
    assert spy.zeros == counts[:-1], "each round must score the weights masked by the round before"
    if scope == "global":
        assert sum(int((~m).sum()) for m in masks.values()) == round(0.9 * n)
    else:
        assert all(int((~m).sum()) == round(0.9 * m.numel()) for m in masks.values())
    assert all(not (masks[k] & ~start[k]).any() for k in masks), "a pruned weight came back"


def test_synflow_avoids_layer_collapse_where_global_magnitude_empties_a_layer():
    def mlp():  # PyTorch's default init: the wide first layer gets the smallest weights
        torch.manual_seed(0)
        return MLP([1, 28, 28], 10, hidden=(300, 100))

    net = mlp()
    magnitude = UnstructuredPruner(Magnitude(), exclude_output=False).prune(
        net, full_masks(prunable_parameters(net, exclude_output=False)), 0.99, ctx())
    assert min(int(m.sum()) for m in magnitude.values()) == 0, "global magnitude should empty a layer"
    net = mlp()
    synflow = UnstructuredPruner(SynFlow([1, 28, 28]), exclude_output=False, rounds=100)
    masks = synflow.prune(net, full_masks(prunable_parameters(net, exclude_output=False)), 0.99, ctx())
    assert sparsity(masks) == pytest.approx(0.99, abs=1e-5)
    assert min(int(m.sum()) for m in masks.values()) > 0, {n: int(m.sum()) for n, m in masks.items()}


# -- baselines --------------------------------------------------------------------------------------------------
def pruned(baseline, target=0.7, masks=None, net=None, seed=0):
    net = net or bn_net()
    masks = masks or full_masks(prunable_parameters(net))
    return net, UnstructuredPruner(Magnitude(), baseline=baseline).prune(net, masks, target, ctx(seed=seed))


def test_shuffle_keeps_each_layers_density_and_moves_the_positions():
    _, plain = pruned(None)
    _, shuffled = pruned("shuffle")
    for name in plain:
        assert int(shuffled[name].sum()) == int(plain[name].sum())
        assert not torch.equal(shuffled[name], plain[name])
    net, half = pruned(None, 0.5)
    _, further = pruned("shuffle", 0.8, half, net)
    assert all(not (further[k] & ~half[k]).any() for k in half), "shuffling must not revive pruned weights"


def test_reinit_keeps_the_mask_and_redraws_the_kept_weights_seeded():
    net0, plain = pruned(None)
    net1, masks = pruned("reinit")
    assert all(torch.equal(masks[n], plain[n]) for n in plain)
    for name, m in masks.items():
        w0, w1 = net0.get_parameter(name), net1.get_parameter(name)
        assert torch.all(w1[~m] == 0)
        assert not torch.isclose(w0[m], w1[m]).any()
    net2, _ = pruned("reinit")
    assert all(torch.equal(net1.get_parameter(n), net2.get_parameter(n)) for n in masks)


def test_invert_keeps_the_lowest_scores():
    net = bn_net()
    params = {n: p.detach().abs().clone() for n, p in prunable_parameters(net).items()}
    _, masks = pruned("invert", net=net)
    kept = torch.cat([params[n][m] for n, m in masks.items()])
    gone = torch.cat([params[n][~m] for n, m in masks.items()])
    assert kept.max() <= gone.min()
    assert sparsity(masks) == pytest.approx(0.7, abs=1e-3)
