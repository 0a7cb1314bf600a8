"""W&B per run: what lands in the offline run files, and that W&B can never break a run."""

import json
import re
from collections import Counter
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
import wandb
from omegaconf import OmegaConf

from prunelab import summary as run_scores
from prunelab.tasks import CLASSIFICATION
from prunelab.analysis import aggregate, gather, report
from prunelab.config import build
from prunelab.labels import run_labels, run_name
from prunelab.paths import RunPaths, run_folder
from prunelab.pruning.masks import count_parameters
from prunelab.runs.job import execute
from prunelab.runs.run import load_dense
from prunelab.tracking import session
from tests.helpers import (
    ROOT,
    TIMES,
    TINY,
    Stopped,
    compose_config,
    fake_results,
    run,
    stop_at_epoch_start,
    stop_in_epoch,
    wandb_run_dirs,
    wandb_run_file,
)

WANDB = [*TINY, "logger=wandb"]
QUICK = [*WANDB, "schedule.pretrain_epochs=1", "schedule.targets=[0.5]"]  # 2 stages: enough for the fallbacks


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models gain nothing from threads; on a busy machine they only contend."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def wandb_run(tmp_path_factory):
    """One TINY run logged to W&B offline, with the final model as an artifact."""
    out = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_SILENT", "true")
        run(compose_config(*WANDB, "logger.mode=offline", "logger.log_model=true", "logger.tags=[paper]"), out)
    wandb.teardown()  # waits until W&B has written everything down
    (run_dir,) = wandb_run_dirs(out)
    return out, run_dir, wandb_run_file(run_dir)


def test_run_is_named_and_tagged_from_its_config(wandb_run):
    _, _, logged = wandb_run
    assert logged["run"].display_name == "magnitude_digits_cnn_digits_s0"  # as its folder in the store
    assert logged["run"].job_type == "magnitude"
    assert set(logged["run"].tags) == {"magnitude", "digits_cnn", "digits", "iterative", "seed=0", "paper"}
    assert logged["run"].run_group == "", "a single run belongs to no sweep"
    config = {item.key: json.loads(item.value_json) for item in logged["run"].config.update}
    assert config["method"] == "magnitude" and config["family"] == "magnitude" and config["seed"] == 0
    assert logged["exit"].exit_code == 0


def test_the_readme_names_runs_and_their_folders_as_they_are_named():
    readme = (ROOT / "README.md").read_text()
    (wandb_name,) = re.findall(r"W&B run whose config .*?named `([^`]+)`", readme, flags=re.S)
    (folder,) = re.findall(r"`<store_dir>/runs/([^`]+)/`", readme)
    labels = run_labels(OmegaConf.to_container(compose_config(), resolve=True))
    fill = {"<method>": labels["method"], "<model>": labels["model"], "<dataset>": labels["dataset"],
            "<seed>": str(labels["seed"]), "<hash>": "KEY"}
    documented = [re.sub("|".join(fill), lambda m: fill[m.group()], doc) for doc in (wandb_name, folder)]
    assert documented == [run_name(labels), run_folder("store", run_name(labels), "KEY").root.name]


def test_each_metric_is_defined_once_and_only_metrics_that_are_logged(wandb_run):
    _, _, logged = wandb_run
    defined = Counter(m.name or m.glob_name for m in logged["metrics"])
    assert set(defined.values()) == {1}, "each definition is sent once"
    logged_stage_keys = {k for row in logged["history"] for k in row if k.startswith("stage/")}
    assert {k for k in defined if k.startswith("stage/")} == logged_stage_keys
    assert len(defined) == len(logged_stage_keys) + 2  # and the trainer's step, its axis for the rest ("*")


def test_stage_metrics_equal_results_csv(wandb_run):
    out, _, logged = wandb_run
    results = pd.read_csv(out / "results.csv")
    stages = pd.DataFrame([{k.removeprefix("stage/"): v for k, v in row.items() if k.startswith("stage/")}
                           for row in logged["history"] if "stage/stage" in row])
    numeric = results.select_dtypes("number").columns
    assert len(stages) == len(results) == 3
    assert stages[numeric].to_numpy() == pytest.approx(results[numeric].to_numpy(), nan_ok=True)  # NaN: not measured


def test_curve_table_equals_results_csv(wandb_run):
    out, run_dir, logged = wandb_run
    (row,) = [r for r in logged["history"] if "curve/table/path" in r]
    assert row["curve/test_acc_vs_param_sparsity_table/_type"] == "table-file"  # the line plot's data
    table = json.loads((run_dir / "files" / row["curve/table/path"]).read_text())
    curve = pd.DataFrame(table["data"], columns=table["columns"])
    pd.testing.assert_frame_equal(curve, pd.read_csv(out / "results.csv"), check_dtype=False)


def test_summary_scalars_and_layer_sparsity_are_the_runs_scores(wandb_run):
    out, _, logged = wandb_run
    summary = run_scores.run_summary(pd.read_csv(out / "results.csv"), CLASSIFICATION)
    assert {k: logged["summary"][f"summary/{k}"] for k in summary} == pytest.approx(summary)
    assert {"dense_acc", "final_acc", "param_sparsity_within_1pt", "acc_auc", "total_time_s", "stage_time_s/2"} <= set(
        summary)
    layers = gather.final_layers(pd.read_csv(out / "layer_sparsity.csv"))
    assert {f"layer_sparsity/{n}": s for n, s in zip(layers["layer"], layers["sparsity"])} == pytest.approx(
        {k: v for k, v in logged["summary"].items() if k.startswith("layer_sparsity/")})


def test_log_model_uploads_the_final_pruned_weights(wandb_run):
    out, run_dir, logged = wandb_run
    (artifact,) = [a for a in logged["artifacts"] if a.type == "model"]
    assert artifact.name == f"model-{run_dir.name.split('-')[-1]}" and "final" in artifact.aliases
    assert [entry.path for entry in artifact.manifest.contents] == ["model.pt"]
    model = build(compose_config().model)
    load_dense(model, str(out / "model.pt"))
    assert count_parameters(model)[1] == pd.read_csv(out / "results.csv")["nonzero_params"].iloc[-1]


def test_unreachable_wandb_server_falls_back_to_offline(tmp_path, monkeypatch, caplog):
    for name, value in {"WANDB_BASE_URL": "http://127.0.0.1:9", "WANDB_MODE": "online", "WANDB_API_KEY": "x" * 40,
                        "WANDB_INIT_TIMEOUT": "3"}.items():
        monkeypatch.setenv(name, value)
    wandb.teardown()  # W&B reads its environment once per process
    try:
        out = run(compose_config(*QUICK), tmp_path)
    finally:
        wandb.teardown()
    assert "could not start the run in online mode" in caplog.text and "127.0.0.1:9" in caplog.text
    assert "wandb sync" in caplog.text
    results = pd.read_csv(tmp_path / "results.csv")
    assert results["stage"].tolist() == [0, 1] and out.results["test_acc"].tolist() == results["test_acc"].tolist()
    (offline,) = wandb_run_dirs(tmp_path)
    assert wandb_run_file(offline)["summary"]["summary/final_acc"] == pytest.approx(results["test_acc"].iloc[-1])


def test_wandb_failing_mid_run_does_not_stop_the_run(tmp_path, monkeypatch, caplog):
    def broken(self, *args, **kwargs):
        raise ConnectionResetError("the W&B service went away")

    monkeypatch.setattr(wandb.sdk.wandb_run.Run, "log", broken)
    out = run(compose_config(*QUICK), tmp_path)
    assert out.results["stage"].tolist() == [0, 1]
    assert pd.read_csv(tmp_path / "results.csv")["stage"].tolist() == [0, 1]
    assert "W&B failed mid-run" in caplog.text and "wandb sync" in caplog.text
    assert wandb.run is None, "the W&B run is finished"


def test_a_failed_run_is_finished_and_marked_failed_in_wandb(tmp_path):
    with pytest.raises(RuntimeError, match="pruning bug"):
        run(compose_config(*WANDB, "schedule.pretrain_epochs=1", "pruning._target_=tests.helpers.FailingPruner"),
            tmp_path)
    assert wandb.run is None
    wandb.teardown()
    (run_dir,) = wandb_run_dirs(tmp_path)
    assert wandb_run_file(run_dir)["exit"].exit_code == 1
    assert pd.read_csv(tmp_path / "results.csv")["stage"].tolist() == [0, 1], "finished stages are kept"


@pytest.mark.parametrize("stop", [stop_at_epoch_start, stop_in_epoch], ids=["before-a-stage-row", "after-a-stage-row"])
@pytest.mark.parametrize("epoch", [2, 3], ids=["in-the-first-stage", "after-a-checkpoint"])
def test_a_killed_run_continued_is_one_wandb_run_holding_each_stage_once(stop, epoch, tmp_path, monkeypatch):
    """Killed as epoch 2 starts (the first of stage 1, after the store's dense model: no checkpoint of its own
    yet) or epoch 3 (after one), or just after that start logged a stage's row, then run again: one W&B run id,
    each stage once."""
    config = [*WANDB, "logger.mode=offline"]
    stop(monkeypatch, epoch)
    with pytest.raises(Stopped):
        run(compose_config(*config), tmp_path)
    monkeypatch.undo()
    run(compose_config(*config), tmp_path)
    wandb.teardown()
    first, second = (wandb_run_file(d) for d in wandb_run_dirs(tmp_path))
    assert first["run"].run_id == second["run"].run_id
    assert first["run"].resume and second["run"].resume, "wandb sync appends the second part to the first"
    assert json.loads(RunPaths(tmp_path).wandb_run.read_text()) == {"id": first["run"].run_id, "stages": 3}
    assert first["run"].display_name == second["run"].display_name
    assert (first["exit"].exit_code, second["exit"].exit_code) == (1, 0)

    stages = pd.DataFrame([{k.removeprefix("stage/"): v for k, v in row.items() if k.startswith("stage/")}
                           for part in (first, second) for row in part["history"] if "stage/stage" in row])
    results = pd.read_csv(tmp_path / "results.csv")
    numeric = results.select_dtypes("number").columns.drop(TIMES, errors="ignore")
    assert stages["stage"].tolist() == [0, 1, 2], "each stage once, in order"
    assert stages[numeric].to_numpy() == pytest.approx(results[numeric].to_numpy(), nan_ok=True)  # NaN: not measured
    for part in (first, second):
        assert set(Counter(m.name or m.glob_name for m in part["metrics"]).values()) == {1}
    assert second["summary"]["summary/final_acc"] == pytest.approx(results["test_acc"].iloc[-1])


def test_a_run_done_and_rerun_is_a_new_wandb_run(tmp_path):
    config = [*QUICK, "logger.mode=offline", f"store_dir={tmp_path / 'store'}"]
    execute(compose_config(*config), tmp_path / "first")
    execute(compose_config(*config, "rerun=true"), tmp_path / "second")
    wandb.teardown()
    (run_dir,) = (tmp_path / "store" / "runs").iterdir()
    done, rerun = (wandb_run_file(d) for d in wandb_run_dirs(run_dir))
    assert done["run"].run_id != rerun["run"].run_id
    assert [[h["stage/stage"] for h in part["history"] if "stage/stage" in h] for part in (done, rerun)] == [[0, 1]] * 2


def test_sweep_runs_are_grouped_by_their_sweep_directory():
    labels = {"method": "snip", "family": "gradient", "model": "resnet20", "dataset": "cifar10",
              "schedule": "oneshot", "seed": 2}
    identity = session.run_identity(labels, session.group_name("multirun/2025-01-01/10-00-00"), tags=["x"])
    assert identity == {"name": "snip_resnet20_cifar10_s2", "group": "multirun/2025-01-01/10-00-00",
                        "job_type": "snip", "tags": ["snip", "gradient", "resnet20", "cifar10", "oneshot", "seed=2", "x"]}
    assert len(session.group_name("/" + "a" * 300)) == 128


# -- the W&B API path of prunelab-report, with fake API runs ------------------------------------------
def fake_api_run(results: pd.DataFrame, state="finished", job_type=None, run_id="abc"):
    method, seed = results["method"].iloc[0], int(results["seed"].iloc[0])
    config = {"pruning": {"name": method, "family": "magnitude", "scope": "global"}, "model": {"name": "mlp"},
              "dataset": {"name": "digits", "seed": seed}, "schedule": {"name": "iterative", "targets": [0.5, 0.8]},
              "seed": seed}
    stage_rows = [{f"stage/{k}": v for k, v in row.items() if isinstance(v, (int, float))}
                  for row in results.to_dict("records")]
    history = [{"train/loss": 1.0, "stage/stage": None}, *stage_rows]
    summary = {"summary/final_acc": 0.7, "layer_sparsity/fc1.weight": 0.75, "layer_sparsity/fc2.weight": 0.9}
    return SimpleNamespace(state=state, job_type=job_type or method, path=["me", "prunelab", run_id], config=config,
                           summary=summary, scan_history=lambda: iter(history))


def test_wandb_api_runs_become_the_same_results_rows():
    results = [fake_results("magnitude", seed, [0.9, 0.8 - seed / 100, 0.7]) for seed in (0, 1)]
    runs = [fake_api_run(r, run_id=f"r{i}") for i, r in enumerate(results)]
    runs += [fake_api_run(results[0], job_type="summary", run_id="summary"),
             fake_api_run(results[0], state="crashed", run_id="crashed"),
             fake_api_run(results[0].iloc[:2], run_id="short")]
    kept, skipped = report.wandb_runs(runs)
    assert [r.id for r in kept] == ["me/prunelab/r0", "me/prunelab/r1"]
    assert dict(skipped) == {"me/prunelab/crashed": "W&B state crashed", "me/prunelab/short": "incomplete: 2 of 3 stages"}
    pd.testing.assert_frame_equal(kept[0].results[results[0].columns], results[0], check_dtype=False)
    assert kept[0].layers["sparsity"].tolist() == [0.75, 0.9]
    sweep = gather.build_sweep(kept, skipped)
    assert sweep.runs["series"].unique().tolist() == ["magnitude"], "seeds aside, the two runs are one series"
    assert aggregate.aggregate(sweep.runs)["test_acc_mean"].tolist() == pytest.approx([0.9, 0.795, 0.7])
