"""Properties of selection over random shapes, targets and tied scores: exact pruned counts, a clean threshold
between kept and pruned scores, and masks that only shrink, from `keep_top` up to the pruner's rounds."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from prunelab.pruning import UnstructuredPruner
from prunelab.pruning.criteria import Magnitude
from prunelab.pruning.masks import full_masks, sparsity
from prunelab.pruning.pruner import round_targets
from prunelab.pruning.select import keep_top, keep_top_parts, layer_targets, select
from tests.helpers import ctx

shapes = st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple)
targets = st.floats(0.0, 0.99)


@st.composite
def tied_scores(draw, shape=None):
    """A tensor of `shape` (or a random one) whose scores come from a few values, so ties are common."""
    shape = shape or draw(shapes)
    n = torch.Size(shape).numel()
    values = draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n))
    return torch.tensor(values, dtype=torch.float32).view(shape)


@st.composite
def layers(draw):
    """Scores and (partly pruned) masks of 1-3 parameters."""
    names = [f"{i}.weight" for i in range(draw(st.integers(1, 3)))]
    scores = {n: draw(tied_scores()) for n in names}
    masks = {n: torch.tensor(draw(st.lists(st.booleans(), min_size=s.numel(), max_size=s.numel())),
                             dtype=torch.bool).view(s.shape) for n, s in scores.items()}
    return scores, masks


def assert_clean_threshold(scores: torch.Tensor, old: torch.Tensor, new: torch.Tensor) -> None:
    """Among the weights `old` kept, every one `new` prunes scores no higher than every one it keeps."""
    pruned, kept = scores[old & ~new], scores[new]
    if len(pruned) and len(kept):
        assert pruned.max() <= kept.min()


@settings(max_examples=200, deadline=None)
@given(scores=tied_scores(), n_prune=st.integers(-2, 130))
def test_keep_top_prunes_exactly_n_of_the_lowest_scores(scores, n_prune):
    keep = keep_top(scores, n_prune)
    assert keep.shape == scores.shape and keep.dtype == torch.bool
    assert int((~keep).sum()) == min(max(n_prune, 0), scores.numel())
    assert_clean_threshold(scores, torch.ones_like(keep), keep)


def reference_keep_top(flat: torch.Tensor, n_prune: int) -> torch.Tensor:
    """The plain definition: above the n_prune-th smallest score, plus the last tied ones up to the count."""
    threshold = flat.kthvalue(n_prune).values
    keep = flat > threshold
    ties = (flat == threshold).nonzero().squeeze(1)
    keep[ties[len(ties) - (flat.numel() - n_prune - int(keep.sum())):]] = True
    return keep


@pytest.mark.parametrize("scores", [
    torch.randn(3_000_000, generator=torch.Generator().manual_seed(0)),  # the sample brackets the threshold
    torch.randint(-3, 4, (3_000_000,), generator=torch.Generator().manual_seed(1)).float(),  # huge ties
    torch.arange(3_000_000.0).mul_(torch.arange(3_000_000).remainder(45) != 0),  # a sample of 0s only: no bracket
], ids=["continuous", "tied", "misleading-sample"])
def test_keep_top_of_many_parts_is_the_concatenated_definition(scores):
    n_prune = 2_345_678
    parts = list(scores.split([999_990, 45, 1_999_965]))  # the sample takes every 45th value of each
    keep = torch.cat(keep_top_parts(parts, n_prune))
    assert torch.equal(keep, reference_keep_top(scores, n_prune))
    assert int((~keep).sum()) == n_prune


@settings(max_examples=200, deadline=None)
@given(layer=layers(), target=targets)
def test_layer_selection_prunes_the_exact_count_per_parameter_and_only_shrinks(layer, target):
    scores, masks = layer
    new = select(scores, masks, target, "layer")
    for name, mask in masks.items():
        assert not (new[name] & ~mask).any(), "a pruned weight came back"
        assert int((~new[name]).sum()) == max(round(target * mask.numel()), int((~mask).sum()))
        assert_clean_threshold(scores[name], mask, new[name])


@settings(max_examples=200, deadline=None)
@given(layer=layers(), target=targets)
def test_global_selection_prunes_the_exact_count_overall_and_only_shrinks(layer, target):
    scores, masks = layer
    new = select(scores, masks, target, "global")
    total = sum(m.numel() for m in masks.values())
    pruned_before = sum(int((~m).sum()) for m in masks.values())
    assert sum(int((~m).sum()) for m in new.values()) == max(round(target * total), pruned_before)
    assert all(not (new[n] & ~masks[n]).any() for n in masks), "a pruned weight came back"
    assert_clean_threshold(*(torch.cat([d[n].reshape(-1) for n in masks]) for d in (scores, masks, new)))


@given(target=targets, rate=st.floats(0.01, 5.0))
def test_layer_targets_are_sparsities_and_rate_one_follows_the_target(target, rate):
    got = layer_targets(["a.weight", "b.weight"], target, {"a.*": rate})
    assert got["b.weight"] == target and 0.0 <= got["a.weight"] <= 1.0


@given(start=st.floats(0.0, 0.9), gain=st.floats(0.0, 0.09), rounds=st.integers(1, 6))
def test_round_targets_rise_from_the_start_to_the_target(start, gain, rounds):
    target = start + gain
    steps = round_targets(start, target, rounds)
    assert len(steps) == rounds and steps[-1] == target
    assert all(start - 1e-12 <= a <= b + 1e-12 for a, b in zip([start, *steps], steps))


@settings(max_examples=50, deadline=None)
@given(widths=st.lists(st.integers(1, 6), min_size=2, max_size=3), seed=st.integers(0, 2**16),
       schedule=st.lists(targets, min_size=1, max_size=4).map(sorted), scope=st.sampled_from(["global", "layer"]),
       rounds=st.integers(1, 3))
def test_the_pruner_reaches_each_target_exactly_and_masks_only_shrink(widths, seed, schedule, scope, rounds):
    torch.manual_seed(seed)
    model = nn.Sequential(*[nn.Linear(a, b) for a, b in zip([3, *widths], [*widths, 2])])
    pruner = UnstructuredPruner(Magnitude(), scope=scope, rounds=rounds)
    params = pruner.parameters(model)
    masks = full_masks(params)
    for target in schedule:
        new = pruner.prune(model, masks, target, ctx(seed))
        assert all(not (new[n] & ~masks[n]).any() for n in masks), "a pruned weight came back"
        assert not any(params[n][~new[n]].any() for n in new), "a pruned weight is not zero"
        if scope == "global":
            total = sum(m.numel() for m in new.values())
            assert round(sparsity(new) * total) == max(round(target * total), round(sparsity(masks) * total))
        masks = new
