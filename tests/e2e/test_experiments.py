"""Every experiment preset (the package's conf/experiment) runs end to end on a tiny budget; the criteria of
experiments/analyse.py pass and fail on hand-made tables."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from experiments import analyse
from prunelab import results as R
from prunelab.config import build
from prunelab.data.cached_folder import take
from prunelab.data.folder import folder_splits
from prunelab.paths import RunPaths
from prunelab.runs.run import load_dense
from prunelab.runs.spec import from_config
from tests.helpers import CONF, LM_TEXT, ROOT, compose_config, options, run, text_corpus, text_options, widths

# The presets' data sets swapped for the bundled 8x8 digits, one epoch per stage, no logger; the keys a
# preset sets on its data set (MNIST's data_dir, CIFAR's limit) are dropped.
TINY_DATA = ["dataset=digits", "logger=none", "trainer.enable_progress_bar=false", "schedule.finetune_epochs=1"]
# Models that need more than 8x8 pixels get synthetic images of MNIST's shape instead.
MNIST_SHAPED = ["dataset=synthetic", "dataset.input_shape=[1,28,28]", "dataset.num_samples=256",
                "dataset.num_test=64", *TINY_DATA[1:]]
NEEDS_28 = {"lenet5"}
# Language-model presets keep dataset=text, on a tiny corpus (the `corpus` fixture) of 32-token windows of a 256-token
# BPE, and their model at llama_tiny's size.
TINY_LLAMA = [f"model.config.{key}={value}" for key, value in
              OmegaConf.to_container(OmegaConf.load(CONF / "model" / "llama_tiny.yaml").config).items()
              if key != "vocab_size"]
TINY_TEXT = [*LM_TEXT, *TINY_LLAMA, *TINY_DATA[1:]]

# What each preset promises at its last stage: the fraction of every layer's weights kept.
LAST_DENSITIES = {
    "han2015": {"1.weight": 0.08, "3.weight": 0.09, "5.weight": 0.26},
    "lottery": {"1.weight": 0.8**15, "3.weight": 0.8**15, "5.weight": 0.9**15},
    "lottery_reinit": {"1.weight": 0.8**15, "3.weight": 0.8**15, "5.weight": 0.9**15},
}


# What each structural preset keeps at its last stage: the output width of every Conv2d and Linear.
LAST_WIDTHS = {"liu2019": [10, 25, 250, 10]}  # half of LeNet-5's 20 / 50 / 500 channels; the classifier whole


def is_language_model(name: str) -> bool:
    return compose_config(f"+experiment={name}").task.name == "language_modeling"


def tiny(name: str, *extra: str):
    data = (MNIST_SHAPED if compose_config(f"+experiment={name}").model.name in NEEDS_28
            else TINY_TEXT if is_language_model(name) else TINY_DATA)
    own = set(compose_config(data[0]).dataset)
    preset_keys = [f"~dataset.{key}" for key in compose_config(f"+experiment={name}", data[0]).dataset
                   if key not in own]
    cfg = compose_config(f"+experiment={name}", *data, *preset_keys, *extra)
    if cfg.schedule.pretrain_epochs:
        cfg = compose_config(f"+experiment={name}", *data, *preset_keys, "schedule.pretrain_epochs=1", *extra)
    return cfg


def swept_retraining(name: str) -> list[str]:
    """The retraining settings a preset's sweep runs (Liu et al.'s controls), else only its default."""
    swept = OmegaConf.select(OmegaConf.load(CONF / "experiment" / f"{name}.yaml"), "hydra.sweeper.params") or {}
    return str(swept["schedule.retrain"]).split(",") if "schedule.retrain" in swept else [None]


@pytest.fixture(scope="module")
def ticket(tmp_path_factory):
    """The masks of a tiny run of the lottery preset, for the presets that replay a ticket."""
    out = tmp_path_factory.mktemp("ticket")
    run(tiny("lottery"), out)
    return out / "masks.pt"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[str]:
    """Overrides that point dataset=text at a tiny corpus, for the language-model presets."""
    folder = tmp_path_factory.mktemp("text")
    return text_options(text_corpus(folder / "corpus"), folder / "cache")


@pytest.fixture(scope="module")
def dense_lm(corpus, tmp_path_factory) -> RunPaths:
    """The folder of a tiny run of lm_dense (its saved model), for the presets that start from a dense LM."""
    out = RunPaths(tmp_path_factory.mktemp("dense_lm"))
    run(tiny("lm_dense", *corpus), out.root)
    return out


SLOW_PRESETS = {"cifar_families", "lottery_reinit"}  # a ResNet-20, a second lottery run: the slow suite
SLOW_RETRAINING = {"finetune", "scratch_e"}  # of a preset that sweeps its retraining, scratch_b runs in the fast suite
PRESET_RUNS = [pytest.param(name, retrain, id=name if retrain is None else f"{name}-{retrain}",
                            marks=[pytest.mark.slow] if name in SLOW_PRESETS or retrain in SLOW_RETRAINING else [])
               for name in options("experiment") for retrain in swept_retraining(name)]


@pytest.mark.parametrize("name, retrain", PRESET_RUNS)
def test_every_experiment_preset_runs_end_to_end(name, retrain, request, tmp_path):
    extra = [f"schedule.retrain={retrain}"] if retrain else []
    if OmegaConf.select(tiny(name), "pruning.criterion._target_", default="").endswith("TicketMasks"):
        extra.append(f"pruning.criterion.path={request.getfixturevalue('ticket')}")
    language_model = is_language_model(name)
    if language_model:
        extra += request.getfixturevalue("corpus")
    if language_model and tiny(name).dense_checkpoint:
        extra.append(f"dense_checkpoint={request.getfixturevalue('dense_lm').model_state}")
    elif tiny(name).dense_checkpoint:  # weights of the real data set: on the tiny data the run trains its own
        extra += ["dense_checkpoint=null", "schedule.pretrain_epochs=1"]
    cfg = tiny(name, *extra)
    out = run(cfg, tmp_path)
    rows = out.results
    assert rows["stage"].tolist() == list(range(len(cfg.schedule.targets) + 1))
    assert rows["target_sparsity"].tolist()[1:] == pytest.approx(list(cfg.schedule.targets))
    if language_model:
        check_language_model_rows(cfg, rows, request)
    else:
        assert rows["test_acc"].between(0, 1).all()
        assert cfg.dataset.name in ("digits", "synthetic")
    assert cfg.model.name == compose_config(f"+experiment={name}").model.name
    assert rows["empty_layers"].iloc[-1] == sum(not m.any() for m in (out.masks or {}).values())  # dense only: none
    if cfg.pruning._target_.startswith(("prunelab.pruning.width.", "prunelab.pruning.depth.")):
        # Heads, channels or layers leave the language model: fewer parameters at every higher target, none zero.
        assert rows["params"].diff().iloc[1:].lt(0).all() and (rows["nonzero_params"] == rows["params"]).all()
    elif cfg.pruning._target_.endswith("StructuralPruner"):
        # Channels leave the model: every higher target has fewer parameters, and none is held at zero.
        assert rows["params"].diff().iloc[1:].lt(0).all() and (rows["nonzero_params"] == rows["params"]).all()
        assert widths(out.module.model) == LAST_WIDTHS[name]
    else:  # masks: the parameter count never changes
        assert (rows["params"] == rows["params"][0]).all()
    if retrain == "scratch_b":  # compute-matched: stage k trains dense / pruned MACs times the dense epochs
        assert rows["epoch"].diff().iloc[1:].tolist() == [
            max(1, round(cfg.schedule.pretrain_epochs * r)) for r in rows["macs"].iloc[0] / rows["nonzero_macs"].iloc[1:]]
    if name in LAST_DENSITIES:
        kept = {n: float(m.float().mean()) for n, m in out.masks.items()}
        assert kept == pytest.approx(LAST_DENSITIES[name], abs=2e-3)


def check_language_model_rows(cfg, rows: pd.DataFrame, request) -> None:
    """A language-model preset's tiny run: on the tiny corpus, finite perplexities, the test perplexity right after
    pruning where the preset asks for it, and a loaded dense model evaluated at stage 0 as its own run left it."""
    assert f"dataset.data_dir={cfg.dataset.data_dir}" in request.getfixturevalue("corpus")
    test_ppl, right_after = rows[R.test("ppl")], rows[R.test_before_ft("ppl")].iloc[1:]
    assert np.isfinite(test_ppl).all() and test_ppl.gt(1).all()
    assert (np.isfinite(right_after).all() and right_after.gt(1).all()) if cfg.metrics.test_before_ft \
        else right_after.isna().all()
    if cfg.dense_checkpoint:  # stage 0 is the dense model as saved: not trained again
        dense = pd.read_csv(request.getfixturevalue("dense_lm").results)
        assert test_ppl.iloc[0] == pytest.approx(dense[R.test("ppl")].iloc[-1], rel=1e-6)


def test_presets_read_real_data_from_the_shared_data_by_default(monkeypatch):
    monkeypatch.setenv("PRUNELAB_DATA", "/shared/data")
    for name in options("experiment"):
        dataset = compose_config(f"+experiment={name}").dataset
        if dataset.name == "cifar10_jpeg":
            assert dataset.root == "/shared/data/CIFAR-10-images/train"
            assert dataset.test_root == "/shared/data/CIFAR-10-images/test"
        elif dataset.name == "text":  # the Python documentation, its BPE trained on the train split
            assert dataset.data_dir == "/shared/data/python-docs" and dataset.tokenizer is None
        else:
            assert dataset.name == "mnist" and dataset.download is False and dataset.data_dir == "/shared/data"


def test_the_committed_dense_weights_a_preset_starts_from_fit_its_model_by_their_record(tmp_path):
    presets = {name: compose_config(f"+experiment={name}") for name in options("experiment")}
    starts = {name: cfg for name, cfg in presets.items() if cfg.dense_checkpoint}
    assert starts  # lm_oneshot
    for name, cfg in starts.items():
        path = ROOT / cfg.dense_checkpoint
        recorded = json.loads((path.parent / "settings.json").read_text())["model"]
        assert recorded == from_config(cfg, tmp_path).dense_settings["model"], name
        load_dense(build(cfg.model), str(path))  # a ConfigError if the weights do not fit


def preset_splits(name: str) -> dict:
    """The image indices of each split a CIFAR-10 preset trains, validates and tests on (50 000 + 10 000 images)."""
    dataset = compose_config(f"+experiment={name}").dataset
    splits = folder_splits(50_000, 10_000, dataset.val_fraction, 0.2, dataset.split_seed)
    return {split: take(idx, dataset.limit, dataset.split_seed) for split, (_, idx) in splits.items()}


def test_cifar_dense_trains_on_every_training_image_but_the_validation_split_the_pruning_runs_validate_on():
    dense, families = preset_splits("cifar_dense"), preset_splits("cifar_families")
    assert {split: len(idx) for split, idx in dense.items()} == {"train": 47_500, "val": 2_500, "test": 10_000}
    assert all(torch.equal(dense[split].sort().values, families[split].sort().values) for split in ("val", "test"))


def rows(method, seed, targets, accs, schedule="iterative", retrain="finetune", **columns):
    """A run's results rows as gathered: stage 0 dense, then one row per target."""
    n = len(targets) + 1
    return pd.DataFrame({"run": f"{method}-{schedule}-{retrain}-{seed}", "series": method, "family": method,
                         "method": method, "schedule": schedule, "retrain": retrain, "seed": seed, "stage": range(n),
                         "epoch": range(1, n + 1), "target_sparsity": [0.0, *targets], "test_acc": accs, **columns})


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


DST_TARGETS = [0.9, 0.95, 0.98]


def dst_sweep(accs: dict[str, list[float]]) -> pd.DataFrame:
    """Two seeds per method, the second 0.002 above the first at every target."""
    return pd.concat([rows(m, s, DST_TARGETS, [0.98, *(a + 0.002 * s for a in acc)], schedule="sparse_training")
                      for m, acc in accs.items() for s in (0, 1)], ignore_index=True)


def test_rigl2020_criteria_order_rigl_set_and_static_by_their_mean_at_every_target():
    ordered = dst_sweep({"rigl": [0.97, 0.96, 0.95], "set": [0.97, 0.955, 0.94], "static": [0.965, 0.95, 0.93]})
    rigl_set, set_static = analyse.rigl2020(ordered, pd.DataFrame())
    assert rigl_set.passed and set_static.passed
    assert "98%: rigl 95.10 ± 0.14, set 94.10 ± 0.14, static 93.10 ± 0.14" in rigl_set.value
    assert "98%: +1.00" in set_static.value and "magnitude" not in rigl_set.value
    # RigL behind SET at one target is a fail, however far ahead elsewhere; iterative magnitude is reported beside
    behind = dst_sweep({"rigl": [0.99, 0.99, 0.939], "set": [0.97, 0.955, 0.94], "static": [0.9, 0.9, 0.9]})
    with_magnitude = pd.concat([behind, rows("magnitude", 0, DST_TARGETS, [0.98, 0.975, 0.97, 0.96])])
    rigl_set, set_static = analyse.rigl2020(with_magnitude, pd.DataFrame())
    assert not rigl_set.passed and set_static.passed
    assert "iterative magnitude 90%: 97.50, 95%: 97.00, 98%: 96.00" in rigl_set.value


@pytest.mark.parametrize("scratch_b, scratch_e, passes", [
    (0.9885, 0.985, (True, True, True)),     # Scratch-B 0.15 below fine-tuned, Scratch-E 0.5 below
    (0.9875, 0.979, (False, False, True)),   # 0.25 and 1.1 points below
    (0.9885, 0.9890, (True, True, False)),   # Scratch-E above Scratch-B
])
def test_liu2019_criteria_compare_the_scratch_controls_with_fine_tuning_at_every_target(scratch_b, scratch_e, passes):
    speed = {"theoretical_speedup": [1.0, 3.5, 8.6]}
    runs = pd.concat([rows("l1_filter", s, [0.5, 0.7], [0.99, 0.992, acc], schedule="oneshot", retrain=r, **speed)
                      for r, acc in (("finetune", 0.99), ("scratch_e", scratch_e), ("scratch_b", scratch_b))
                      for s in (0, 1)], ignore_index=True)
    checks = analyse.liu2019(runs, pd.DataFrame())
    assert tuple(c.passed for c in checks) == passes
    assert "dense 99.00 ± 0.00" in checks[0].value and "70%: 8.60x" in checks[0].value


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


def lm_rows(series: str, seed: int, targets: list[float], before: list[float], after: list[float]) -> pd.DataFrame:
    """A language-model run's rows: stage 0 dense at 12.0, then the targets' perplexities before and after recovery."""
    method = series.split()[0]
    return pd.DataFrame({"method": method, "series": series, "seed": seed, "stage": range(len(targets) + 1),
                         "target_sparsity": [0.0, *targets], "weight_sparsity": [0.0, *targets],
                         "test_ppl_before_ft": [float("nan"), *before], "test_ppl": [12.0, *after]})


@pytest.mark.parametrize("owl_ppl, passes", [(40.0, True), (60.0, False)])
def test_lm_oneshot_criteria_compare_before_fine_tuning_and_owl_at_70(owl_ppl, passes):
    t = [0.5, 0.7]
    runs = pd.concat([frame for s in (0, 1) for frame in (
        lm_rows("magnitude", s, t, [30.0, 90.0], [20.0, 40.0]), lm_rows("wanda", s, t, [18.0, 50.0], [15.0, 30.0]),
        lm_rows("sparsegpt", s, t, [16.0, 45.0], [14.0, 28.0]),
        lm_rows("wanda (owl)", s, t, [18.5, owl_ppl], [15.0, 29.0]),
        lm_rows("magnitude (pattern=2:4)", s, [0.5], [70.0], [30.0]),
        lm_rows("wanda (pattern=2:4)", s, [0.5], [35.0], [25.0]),
        lm_rows("sparsegpt (pattern=2:4)", s, [0.5], [25.0 + s], [20.0]))], ignore_index=True)
    checks = analyse.lm_oneshot(runs, pd.DataFrame())
    assert [c.passed for c in checks] == [True, True, True, True, passes, True]
    assert checks[2].value == "sparsegpt 25.50 ± 0.71, magnitude 70.00 ± 0.00"
    unstructured = runs[~runs["series"].str.contains("pattern")]
    assert [c.criterion for c in analyse.lm_oneshot(unstructured, pd.DataFrame())] == [
        c.criterion for c in checks if "2:4" not in c.criterion]
    worse = runs.assign(test_ppl=runs["test_ppl"].where(runs["stage"] == 0, 100.0))
    assert not analyse.lm_oneshot(worse, pd.DataFrame())[-1].passed
    table = analyse.lm_oneshot_table(runs)
    assert table.loc[("wanda (owl)", 0.7), "before_ft"] == f"{owl_ppl:.2f} ± 0.00" and table["n"].eq(2).all()


@pytest.mark.parametrize("bi_after, passes", [(19.0, True), (21.0, False)])
def test_lm_structured_criteria_rank_width_importances_and_compare_with_llm_pruner_and_a_random_layer(bi_after, passes):
    t = [0.2, 0.35]
    runs = pd.concat([frame for s in (0, 1) for frame in (
        lm_rows("lm_width_taylor", s, t, [18.0, 30.0], [15.0, 20.0]),
        lm_rows("lm_width_l2", s, t, [30.0, 120.0], [17.0, 25.0]),
        lm_rows("lm_width_random", s, t, [22.0, 48.0], [17.5, 26.0]),
        lm_rows("lm_depth_bi", s, t, [26.0, 26.0], [bi_after, 19.0]),
        lm_rows("lm_depth_random", s, t, [28.0, 900.0 + s], [20.0, 80.0]),
        lm_rows("wanda", s, t, [12.5, 13.5], [12.4, 13.4]))], ignore_index=True)
    checks = analyse.lm_structured(runs, pd.DataFrame())
    by_name = {c.criterion: c for c in checks}
    assert all(c.passed for name, c in by_name.items() if "width importance" in name) and len(checks) == 11
    # 18 / 12 - 1 = +50% against LLM-Pruner's 19.09 / 12.62 - 1 = +51%; 15 / 12 = +25% against +39%
    assert by_name["width-Taylor at 20% without recovery: relative increase no more than LLM-Pruner's"].value == (
        "+50% against +51%")
    assert by_name["Block Influence's layers below random ones at 20% after recovery"].passed is passes
    assert by_name["Block Influence's layers below random ones at 35% before recovery"].value == (
        "BI 26.00 ± 0.00, random 900.50 ± 0.71")
    l2_first = runs.assign(test_ppl=runs["test_ppl"].where(runs["series"] != "lm_width_l2", 14.0))
    assert not analyse.lm_structured(l2_first, pd.DataFrame())[2].passed
    worse = runs.assign(test_ppl=runs["test_ppl"].where(runs["series"] != "lm_depth_bi", 30.0))
    assert not analyse.lm_structured(worse, pd.DataFrame())[-1].passed


def test_the_figure_keeps_a_loaded_dense_model_and_drops_only_an_untrained_one():
    runs = lm_rows("wanda", 0, [0.5], [15.0], [14.0]).assign(epoch=0, run="r", schedule="oneshot", retrain="finetune",
                                                              family="unstructured", base="wanda")
    assert 0 in analyse.figure_table(runs)["stage"].tolist()
    assert 0 not in analyse.figure_table(runs, at_init=True)["stage"].tolist()
