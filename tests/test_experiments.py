"""Every experiment preset (conf/experiment -> experiments/) runs end to end on a tiny budget."""

import pytest

from prunelab.run import run
from tests.conftest import compose_config, options

# The presets' MNIST swapped for the bundled 8x8 digits, one epoch per stage, no logger.
TINY_DATA = ["dataset=digits", "~dataset.data_dir", "~dataset.download", "logger=none",
             "trainer.enable_progress_bar=false", "schedule.finetune_epochs=1"]

# What each preset promises at its last stage: the fraction of every layer's weights kept.
LAST_DENSITIES = {
    "han2015": {"1.weight": 0.08, "3.weight": 0.09, "5.weight": 0.26},
    "lottery": {"1.weight": 0.8**15, "3.weight": 0.8**15, "5.weight": 0.9**15},
    "lottery_reinit": {"1.weight": 0.8**15, "3.weight": 0.8**15, "5.weight": 0.9**15},
}


def tiny(name: str, *extra: str):
    cfg = compose_config(f"+experiment={name}", *TINY_DATA, *extra)
    if cfg.schedule.pretrain_epochs:
        cfg = compose_config(f"+experiment={name}", *TINY_DATA, "schedule.pretrain_epochs=1", *extra)
    return cfg


@pytest.fixture(scope="module")
def ticket(tmp_path_factory):
    """The masks of a tiny run of the lottery preset, for the presets that replay a ticket."""
    out = tmp_path_factory.mktemp("ticket")
    run(tiny("lottery"), out)
    return out / "masks.pt"


@pytest.mark.parametrize("name", options("experiment"))
def test_every_experiment_preset_runs_end_to_end(name, request, tmp_path):
    replays = tiny(name).pruning.criterion._target_.endswith("TicketMasks")
    cfg = tiny(name, *([f"pruning.criterion.path={request.getfixturevalue('ticket')}"] if replays else []))
    out = run(cfg, tmp_path)
    rows = out.results
    assert rows["stage"].tolist() == list(range(len(cfg.schedule.targets) + 1))
    assert rows["target_sparsity"].tolist()[1:] == pytest.approx(list(cfg.schedule.targets))
    assert rows["test_acc"].between(0, 1).all() and (rows["params"] == rows["params"][0]).all()
    assert cfg.dataset.name == "digits" and cfg.model.name == compose_config(f"+experiment={name}").model.name
    assert rows["empty_layers"].iloc[-1] == sum(not m.any() for m in out.masks.values())
    if name in LAST_DENSITIES:
        kept = {n: float(m.float().mean()) for n, m in out.masks.items()}
        assert kept == pytest.approx(LAST_DENSITIES[name], abs=2e-3)


def test_presets_read_real_mnist_from_the_shared_data_by_default():
    for name in options("experiment"):
        cfg = compose_config(f"+experiment={name}")
        assert cfg.dataset.name == "mnist" and cfg.dataset.download is False
