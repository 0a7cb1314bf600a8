"""Training-time pruning without a Trainer: ERK allocation, SET/RigL mask moves, movement pruning, resume."""

import math

import pytest
import torch
from torch import nn

from prunelab.errors import ConfigError
from prunelab.pruning.allocation import erk_densities, layer_counts
from prunelab.pruning.dst import SparseTraining, drop_and_grow, drop_fraction
from prunelab.pruning.movement import AccumulatedMovement, Movement
from prunelab.pruning.select import select
from prunelab.training.engine import StageEngine
from prunelab.training.meter import Meter
from prunelab.training.schedule import GradualSchedule, Schedule
from tests.helpers import FakeHost, drive

LABELS = {"method": "rigl", "family": "sparse", "model": "mlp", "dataset": "toy", "schedule": "sparse_training",
          "seed": 0}
METER = dict(latency_repeats=1, latency_warmup=0)


def test_erk_densities_follow_sum_over_product_keep_the_global_density_and_cap_dense_layers():
    shapes = {"a": (4, 3), "b": (100, 50), "c": (20, 10, 3, 3)}
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    d = erk_densities(shapes, 0.1)
    eps = d["b"] / (150 / 5000)
    assert d["c"] == pytest.approx(eps * 36 / 1800) and d["a"] == 1.0  # the small layer would exceed 1
    assert sum(d[n] * sizes[n] for n in shapes) == pytest.approx(0.1 * sum(sizes.values()))
    counts = layer_counts(shapes, 0.1, "erk")
    assert sum(counts.values()) == round(0.1 * sum(sizes.values())) and counts["a"] == 12


def test_rigl_drops_the_smallest_active_and_regrows_the_largest_gradient_inactive():
    w = torch.tensor([[0.9, -0.1, 0.5, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True, False, False, False]])
    grad = torch.tensor([[5.0, 0.05, 5.0, 0.1, -0.7, 0.3]])  # the weights still active do not count
    new = drop_and_grow(w, mask, grad.abs(), 1 / 3)
    assert new.tolist() == [[True, False, True, False, True, False]]


def test_rigl_regrows_a_just_dropped_weight_when_its_gradient_is_largest():
    # Evci et al. 2020, Algorithm 1: the regrown weights are the top-k gradients of all weights inactive after
    # the drop, so the dropped -0.1 (|g| 5) comes straight back and the mask does not move.
    w = torch.tensor([[0.9, -0.1, 0.5, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True, False, False, False]])
    grad = torch.tensor([[5.0, 5.0, 5.0, 0.1, -0.7, 0.3]])
    assert torch.equal(drop_and_grow(w, mask, grad.abs(), 1 / 3), mask)
    grad[0, 1] = 0.6  # below the inactive -0.7: that one grows instead
    assert drop_and_grow(w, mask, grad.abs(), 1 / 3).tolist() == [[True, False, True, False, True, False]]


def test_the_update_fraction_decays_by_a_cosine_to_zero_at_t_end():
    assert drop_fraction(0, 100, 0.3, 0.75) == pytest.approx(0.3)
    assert drop_fraction(37, 100, 0.3, 0.75) == pytest.approx(0.15, abs=0.01)
    assert drop_fraction(75, 100, 0.3, 0.75) == 0.0 and drop_fraction(99, 100, 0.3, 0.75) == 0.0


def dst_engine(growth):
    schedule = Schedule(targets=[0.5, 0.75], finetune_epochs=4, pretrain_epochs=1, cumulative=False, rewind="init")
    pruner = SparseTraining(growth=growth, scope="erk", delta_t=1, alpha=0.5, t_end=0.75, exclude_output=False)
    return StageEngine(pruner, schedule, LABELS, meter=Meter(**METER)), FakeHost()


@pytest.mark.parametrize("growth", ["random", "gradient"])
def test_set_and_rigl_keep_every_layer_count_regrow_what_they_drop_and_stop_at_t_end(growth):
    engine, host = dst_engine(growth)
    seen = []

    def record(step):
        seen.append((step, engine.state.stage, {n: m.clone() for n, m in engine.masks.items()}))

    engine.start(host)
    step = drive(engine, host, range(9), after_step=lambda s: engine.masks is not None and record(s))
    engine.finish(host, 8, step)
    counts = {stage: {n: int(m.sum()) for n, m in masks.items()} for _, stage, masks in seen}
    shapes = {n: m.shape for n, m in seen[0][2].items()}
    for stage, target in [(1, 0.5), (2, 0.75)]:
        assert counts[stage] == layer_counts(shapes, 1 - target, "erk")
        moves, expected = [], []
        for (_, s0, before), (_, s1, after) in zip(seen, seen[1:]):
            if s0 == s1 == stage:
                dropped = sum(int((before[n] & ~after[n]).sum()) for n in before)
                grown = sum(int((after[n] & ~before[n]).sum()) for n in before)
                assert {n: int(m.sum()) for n, m in after.items()} == counts[stage]
                assert dropped == grown
                moves.append(dropped)
                fraction = drop_fraction(len(moves) + 1, 8, 0.5, 0.75)
                expected.append(sum(round(fraction * c) for c in counts[stage].values()))
        # 8 steps a stage, t_end 0.75: the cosine's count is dropped after steps 1-5, never from step 6 on; a
        # dropped weight may be regrown at once, so at most that many move
        assert all(m <= e for m, e in zip(moves, expected)) and min(moves[:3]) > 0
        assert expected[-3:] == [0, 0, 0] and moves[-3:] == [0, 0, 0]
    for w, n in zip([host.model[0].weight, host.model[2].weight], ["0.weight", "2.weight"]):
        assert torch.equal(w != 0, engine.masks[n])


def test_every_stage_starts_from_the_initial_weights_with_its_own_mask():
    engine, host = dst_engine("gradient")
    initial = {k: v.clone() for k, v in host.model.state_dict().items()}
    starts = []
    drive(engine, host, range(6), after_step=lambda s: s in (3, 11) and starts.append(
        {k: v.clone() for k, v in host.model.state_dict().items()}))
    assert engine.state.stage == 2
    # after the first step of each stage (steps 3 and 11), every kept weight moved once from its initial value
    for state in starts:
        kept = state["0.weight"] != 0
        assert torch.allclose(state["0.weight"][kept], initial["0.weight"][kept] - 0.009)


@pytest.mark.parametrize("growth", ["random", "gradient"])
def test_a_sparse_training_resumed_mid_stage_reaches_the_identical_masks_and_weights(growth):
    engine, host = dst_engine(growth)
    step = drive(engine, host, range(3))
    saved, weights = engine.state_dict(), {k: v.clone() for k, v in host.model.state_dict().items()}
    end = drive(engine, host, range(3, 9), step)
    engine.finish(host, 8, end)

    resumed, host2 = dst_engine(growth)
    host2.model.load_state_dict(weights)
    resumed.load_state_dict(saved)
    resumed.start(host2)
    drive(resumed, host2, range(3, 9), step)
    resumed.finish(host2, 8, end)
    assert all(torch.equal(resumed.masks[n], engine.masks[n]) for n in engine.masks)
    assert all(torch.equal(v, host.model.state_dict()[k]) for k, v in host2.model.state_dict().items())


def test_static_sparse_training_never_moves_the_mask():
    engine, host = dst_engine(None)
    masks = []
    drive(engine, host, range(5), after_step=lambda s: s > 2 and masks.append(dict(engine.masks)))
    assert all(torch.equal(m[n], masks[0][n]) for m in masks for n in m)


@pytest.mark.parametrize("setting, value", [("growth", "grow"), ("scope", "er"), ("delta_t", 0),
                                            ("alpha", 1.0), ("t_end", 0.0)])
def test_bad_sparse_training_settings_name_themselves(setting, value):
    with pytest.raises(ConfigError, match=f"pruning.{setting}"):
        SparseTraining(**{setting: value})


def accumulated_engine():
    schedule = GradualSchedule(targets=[0.5], finetune_epochs=2, pretrain_epochs=1, ramp_epochs=2, every=2)
    return StageEngine(AccumulatedMovement(exclude_output=False), schedule, LABELS, meter=Meter(**METER)), FakeHost()


def test_accumulated_movement_scores_are_the_hand_summed_minus_w_times_grad_over_the_fine_tuning_steps():
    engine, host = accumulated_engine()
    torch.manual_seed(1)
    names = ["0.weight", "2.weight"]
    expected = {n: torch.zeros_like(p) for n, p in host.model.named_parameters() if n in names}
    step = 0
    for epoch in range(3):
        engine.epoch_start(host, epoch, step)
        for _ in range(host.steps_per_epoch):
            params = dict(host.model.named_parameters())
            for p in params.values():
                p.grad = torch.randn_like(p)
            if engine.state.stage:
                for n in names:
                    expected[n] -= params[n].detach() * params[n].grad
            engine.before_optimizer_step(host, step)
            with torch.no_grad():
                for p in params.values():
                    p.sub_(0.1 * p.grad)
            step += 1
            engine.batch_end(host, step)
    assert all(torch.allclose(engine.pruner.scores[n], expected[n]) for n in names)
    # the last pruning (after step 4 of the stage, at the target) kept the highest scores of that moment
    assert sum(int((~m).sum()) for m in engine.masks.values()) == round(0.5 * (48 + 24))


def test_accumulated_movement_scores_survive_a_checkpoint():
    engine, host = accumulated_engine()
    drive(engine, host, range(2))
    saved = engine.state_dict()
    resumed, _ = accumulated_engine()
    resumed.load_state_dict(saved)
    assert all(torch.equal(resumed.pruner.scores[n], s) for n, s in engine.pruner.scores.items())


@pytest.mark.parametrize("pruner", [Movement, AccumulatedMovement])
def test_movement_on_a_step_schedule_fails_before_training(pruner):
    with pytest.raises(ConfigError, match="schedule=agp"):
        StageEngine(pruner(), Schedule(targets=[0.5], finetune_epochs=1, pretrain_epochs=1), LABELS)


def test_accumulated_movement_prunes_the_lowest_scores():
    pruner = AccumulatedMovement(exclude_output=False)
    host = FakeHost()
    pruner.scores = {"0.weight": torch.arange(48.0).view(8, 6), "2.weight": -torch.arange(24.0).view(3, 8)}
    masks = {n: torch.ones_like(s, dtype=torch.bool) for n, s in pruner.scores.items()}
    new = pruner.prune(host.model, masks, 0.5, None)
    assert all(torch.equal(new[n], select(pruner.scores, masks, 0.5, "global")[n]) for n in new)


# -- movement pruning (Sanh et al. 2020) --------------------------------------------------------------
def movement_engine(model=None, target=0.5, lr=0.1):
    schedule = GradualSchedule(targets=[target], finetune_epochs=3, pretrain_epochs=1, ramp_epochs=1, every=1)
    pruner = Movement(exclude_output=False, score_optimizer=lambda p: torch.optim.SGD(p, lr=lr))
    host = FakeHost()
    if model is not None:
        host.model = model
    return StageEngine(pruner, schedule, LABELS, meter=Meter(**METER)), host


def train(engine, host, grads, epochs: range, step: int = 0, after_step=None) -> int:
    """`drive` with the gradients `grads(step, name, param)` (dL/dW', at the masked weights) and a plain SGD step
    at learning rate 0.1."""
    return drive(engine, host, epochs, step, after_step, grads=grads, lr=0.1, drift=0.0)


def seeded_grads(step, name, p):
    return torch.randn(p.shape, generator=torch.Generator().manual_seed(1000 * step + len(name)))


def test_a_pruned_weight_revives_with_the_value_it_kept_when_its_score_climbs_back():
    model = nn.Sequential(nn.Linear(6, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.arange(1.0, 7.0).view(1, 6))
    engine, host = movement_engine(model, target=1 / 6, lr=1.0)
    # dL/dW' of the first two fine-tuning steps (dense training gets none): the first moves weight 0 towards
    # zero (score -1 against 2 ... 6), the second lifts its straight-through score to 3.5 while weight 1 falls
    plan = {2: [1.0, -1.0, -1.0, -1.0, -1.0, -1.0], 3: [-5.0, 1.0, 0.0, 0.0, 0.0, 0.0]}
    seen = []
    train(engine, host, lambda s, n, p: torch.tensor([plan.get(s, [0.0] * 6)]), range(2),
          after_step=lambda s: seen.append((engine.masks and engine.masks["0.weight"].clone(),
                                            model[0].weight.detach().clone())))
    (pruned, w_pruned), (revived, w_revived) = seen[2], seen[3]
    assert pruned.tolist() == [[False] + [True] * 5] and w_pruned[0, 0] == 0.0
    assert revived.tolist() == [[True, False] + [True] * 4] and w_revived[0, 1] == 0.0
    # back with the value it had when pruned (1 - 0.1 * 1; no loss gradient reaches a pruned weight: dL/dW =
    # mask * dL/dW'), not with zero; the newly pruned weight 1 keeps its own, to come back with in turn
    assert w_revived[0, 0].item() == pytest.approx(0.9)
    assert engine.pruner.weights_kept["0.weight"][0, 1].item() == pytest.approx(2.0)
    assert torch.allclose(engine.pruner.scores["0.weight"].detach()[0, :2], torch.tensor([3.5, -0.1]))


def test_movement_scores_and_weights_follow_the_straight_through_top_k_by_hand():
    engine, host = movement_engine(lr=0.1)
    names = ["0.weight", "2.weight"]
    params = dict(host.model.named_parameters())
    w = {n: params[n].detach().clone() for n in names}  # W, pruned entries included
    s = {n: torch.zeros_like(w[n]) for n in names}
    m = {n: torch.ones_like(w[n], dtype=torch.bool) for n in names}
    checked = []

    def by_hand(step):
        if step <= 2:  # dense training moves every weight
            for n in names:
                w[n] = params[n].detach().clone()
            return
        for n in names:
            g = seeded_grads(step - 1, n, params[n])
            s[n] -= 0.1 * g * w[n]  # dL/dS = dL/dW' * W
            w[n] -= 0.1 * g * m[n]  # dL/dW = mask * dL/dW'
        target = engine.pruner.target
        for n in names:
            m[n] = select({n: s[n]}, {n: torch.ones_like(m[n])}, target, "layer")[n]
            checked.append(torch.equal(m[n], engine.masks[n]) and torch.allclose(params[n], w[n] * m[n])
                           and torch.allclose(engine.pruner.scores[n], s[n]))

    train(engine, host, seeded_grads, range(4), after_step=by_hand)
    assert checked and all(checked)
    # every matrix holds its own top-k (Hugging Face's TopKBinarizer): half of each
    assert [int((~engine.masks[n]).sum()) for n in names] == [24, 12]


def test_a_movement_run_resumed_mid_stage_reaches_the_identical_masks_scores_and_weights():
    engine, host = movement_engine()
    step = train(engine, host, seeded_grads, range(2))
    saved, weights = engine.state_dict(), {k: v.clone() for k, v in host.model.state_dict().items()}
    end = train(engine, host, seeded_grads, range(2, 4), step)
    resumed, host2 = movement_engine()
    host2.model.load_state_dict(weights)
    resumed.load_state_dict(saved)
    resumed.start(host2)
    train(resumed, host2, seeded_grads, range(2, 4), step)
    assert end == 8 and all(torch.equal(resumed.masks[n], engine.masks[n]) for n in engine.masks)
    assert all(torch.equal(v, host.model.state_dict()[k]) for k, v in host2.model.state_dict().items())
    assert all(torch.equal(resumed.pruner.scores[n], s) for n, s in engine.pruner.scores.items())
