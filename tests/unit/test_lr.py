"""Learning-rate schedules: the learning rate of every epoch of a stage, against a hand computation."""

import pytest
import torch

from prunelab.training.lr import warmup_cosine


def epoch_lrs(scheduler_factory, epochs: int, lr: float = 0.1) -> list[float]:
    """The learning rate each epoch of a stage of `epochs` trains at, with the schedule stepped once per epoch."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = scheduler_factory(optimizer, epochs=epochs)
    lrs = []
    for _ in range(epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_warmup_cosine_rises_linearly_then_decays_by_a_cosine_towards_zero():
    # 2 warm-up epochs at 1/3 and 2/3 of the peak; then (1 + cos(pi k / 3)) / 2 for k = 0, 1, 2.
    lrs = epoch_lrs(lambda opt, epochs: warmup_cosine(opt, epochs, warmup_epochs=2), epochs=5)
    assert lrs == pytest.approx([0.1 / 3, 0.2 / 3, 0.1, 0.075, 0.025])


def test_warmup_cosine_never_warms_up_for_the_whole_stage():
    # A 1-epoch stage (fine-tuning, a quick run) trains at the peak; a 2-epoch one warms up for 1 epoch.
    assert epoch_lrs(lambda opt, epochs: warmup_cosine(opt, epochs, warmup_epochs=2), epochs=1) == pytest.approx([0.1])
    assert epoch_lrs(lambda opt, epochs: warmup_cosine(opt, epochs, warmup_epochs=2), epochs=2) == pytest.approx(
        [0.05, 0.1])
