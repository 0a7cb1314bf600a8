"""Every experiment preset (conf/experiment -> experiments/) runs end to end on a tiny budget."""

import pandas as pd
import pytest
from omegaconf import OmegaConf

from experiments import analyse
from tests.helpers import compose_config, options, run

# The presets' data sets swapped for the bundled 8x8 digits, one epoch per stage, no logger; the keys a
# preset sets on its data set (MNIST's data_dir, CIFAR's limit) are dropped, as digits has none of them.
TINY_DATA = ["dataset=digits", "logger=none", "trainer.enable_progress_bar=false", "schedule.finetune_epochs=1"]
DIGITS_KEYS = set(compose_config("dataset=digits").dataset)

# What each preset promises at its last stage: the fraction of every layer's weights kept.
LAST_DENSITIES = {
    "han2015": {"1.weight": 0.08, "3.weight": 0.09, "5.weight": 0.26},
    "lottery": {"1.weight": 0.8**15, "3.weight": 0.8**15, "5.weight": 0.9**15},
    "lottery_reinit": {"1.weight": 0.8**15, "3.weight": 0.8**15, "5.weight": 0.9**15},
}


def tiny(name: str, *extra: str):
    preset_keys = [f"~dataset.{key}" for key in compose_config(f"+experiment={name}", "dataset=digits").dataset
                   if key not in DIGITS_KEYS]
    cfg = compose_config(f"+experiment={name}", *TINY_DATA, *preset_keys, *extra)
    if cfg.schedule.pretrain_epochs:
        cfg = compose_config(f"+experiment={name}", *TINY_DATA, *preset_keys, "schedule.pretrain_epochs=1", *extra)
    return cfg


@pytest.fixture(scope="module")
def ticket(tmp_path_factory):
    """The masks of a tiny run of the lottery preset, for the presets that replay a ticket."""
    out = tmp_path_factory.mktemp("ticket")
    run(tiny("lottery"), out)
    return out / "masks.pt"


@pytest.mark.parametrize("name", options("experiment"))
def test_every_experiment_preset_runs_end_to_end(name, request, tmp_path):
    replays = OmegaConf.select(tiny(name), "pruning.criterion._target_", default="").endswith("TicketMasks")
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


def test_presets_read_real_data_from_the_shared_data_by_default(monkeypatch):
    monkeypatch.setenv("PRUNELAB_DATA", "/shared/data")
    for name in options("experiment"):
        dataset = compose_config(f"+experiment={name}").dataset
        if dataset.name == "cifar10_jpeg":
            assert dataset.root == "/shared/data/CIFAR-10-images/train"
            assert dataset.test_root == "/shared/data/CIFAR-10-images/test"
        else:
            assert dataset.name == "mnist" and dataset.download is False and dataset.data_dir == "/shared/data"


def rows(method, seed, targets, accs, schedule="iterative", **columns):
    """A run's results rows as gathered: stage 0 dense, then one row per target."""
    n = len(targets) + 1
    return pd.DataFrame({"run": f"{method}-{schedule}-{seed}", "series": method, "family": method, "method": method,
                         "schedule": schedule, "seed": seed, "stage": range(n), "epoch": range(1, n + 1),
                         "target_sparsity": [0.0, *targets], "test_acc": accs, **columns})


@pytest.mark.parametrize("pruned_acc, passes", [(0.9846, True), (0.9834, False)])
def test_han2015_criterion_is_the_pruned_error_against_dense_plus_a_tenth_of_a_point(pruned_acc, passes):
    runs = pd.concat([rows("magnitude", s, [0.92], [0.985, pruned_acc], compression=[1.0, 12.0]) for s in (0, 1)],
                     ignore_index=True)
    layers = pd.DataFrame({"stage": 1, "layer": ["1.weight", "3.weight", "5.weight"], "sparsity": [0.92, 0.91, 0.74]})
    dense_err, gap, compression = analyse.han2015(runs, layers)
    assert dense_err.passed and compression.passed and gap.passed is passes
    assert "8.0% / 9.0% / 26.0%" in compression.value


def test_layer_collapse_criteria_read_empty_layers_and_the_first_compression():
    targets = [1 - 10 ** -0.5, 0.9]
    runs = pd.concat([
        rows("magnitude", 0, targets, [0.1, 0.96, 0.11], empty_layers=[0, 0, 1]),
        rows("synflow", 0, targets, [0.1, 0.958, 0.9], empty_layers=[0, 0, 0]),
        rows("random", 0, targets, [0.1, 0.957, 0.8], empty_layers=[0, 0, 0]),
    ], ignore_index=True)
    random_close, synflow, magnitude = analyse.layer_collapse(runs, pd.DataFrame())
    assert random_close.passed and synflow.passed and magnitude.passed
    assert "from 10^1.0 on" in magnitude.value
    worse = runs.assign(test_acc=runs["test_acc"].where(runs["method"] != "random", 0.95))
    assert not analyse.layer_collapse(worse, pd.DataFrame())[0].passed


def test_analysis_of_the_tiny_lottery_run_writes_its_figure(ticket, tmp_path, capsys):
    analyse.main(["lottery", str(ticket.parent), "--figure", str(tmp_path / "lottery.png")])
    out = capsys.readouterr().out
    assert "ticket >= dense at ~21%" in out and (tmp_path / "lottery.png").stat().st_size > 10_000


@pytest.mark.parametrize("l1_acc, passes", [(0.905, True), (0.895, False)])
def test_cifar_families_criteria_compare_at_the_highest_target_and_l1_filter_with_dense(l1_acc, passes):
    targets, speedup = [0.3, 0.8], [1.0, 2.0, 20.0]
    runs = pd.concat([
        rows(m, s, targets, accs, theoretical_speedup=speedup, acc_before_ft=accs)
        for s in (0, 1) for m, accs in [("random", [0.91, 0.90, 0.60]), ("magnitude", [0.91, 0.91, 0.88]),
                                       ("l1_filter", [0.91, l1_acc, 0.50])]
    ], ignore_index=True)
    magnitude_wins, l1_keeps = analyse.cifar_families(runs, pd.DataFrame())
    assert magnitude_wins.passed and "random 60.00 ± 0.00%" in magnitude_wins.value
    assert l1_keeps.passed is passes and "2.00x fewer MACs" in l1_keeps.value
    table = analyse.cifar_families_table(runs)
    assert table.loc[("l1_filter", 0.8), "test_acc"] == "50.00 ± 0.00" and table["n"].eq(2).all()
