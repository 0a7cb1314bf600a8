"""Every option of every config group composes and instantiates; bad input gets a clear message."""

import subprocess
import sys

import pytest

from prunelab.config import build
from tests.helpers import SHARED_DATA, TINY, cli, compose_config


def prunelab(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "prunelab", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize(
    "args, setting",
    [
        pytest.param(["schedule.targets=[0.5,1.2]"], "schedule.targets", marks=pytest.mark.slow),
        pytest.param(["schedule.targets=[0.9,0.5]"], "schedule.targets", marks=pytest.mark.slow),
        pytest.param(["pruning.exclude=[*]"], "pruning.exclude", marks=pytest.mark.slow),
        pytest.param(["dataset=cifar10", "dataset.download=false", "dataset.data_dir=nowhere"], "nowhere",
                     marks=pytest.mark.slow),
        pytest.param(["model=lenet5"], "model", marks=pytest.mark.slow),  # each case starts the command: ~8 s
        pytest.param(["model=causal_lm", "model.path=facebook/opt-125m", "dataset=text"], "model.download",
                     marks=pytest.mark.slow),
    ],
)
def test_cli_bad_input_gives_one_clear_line_and_no_traceback(args, setting, tmp_path):
    proc = prunelab(*TINY, *args, f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert proc.returncode == 2
    assert "prunelab: error: " in proc.stderr and setting in proc.stderr and "Fix:" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "results.csv").exists()


@pytest.mark.slow  # the default run, then its skip: ~40 s
def test_the_default_run_prints_a_line_per_stage_and_where_its_results_are(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_SILENT")  # as in a user's shell
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "matplotlib"))  # a first use: matplotlib builds its font cache
    store = tmp_path / "store"
    proc = cli(cwd=tmp_path, store=store)
    out, err = proc.communicate(timeout=900)
    lines = (out + err).splitlines()
    assert proc.returncode == 0 and len(lines) <= 15, out + err
    assert [sum(f"stage {k}/6 " in line for line in lines) for k in range(7)] == [1] * 7
    (run_dir,) = (store / "runs").glob("*")
    assert lines[-1].endswith(f"results: {run_dir / 'results.csv'}")
    last = next(line for line in lines if "stage 6/6 " in line).split(" - ", 1)[1]
    again = cli(cwd=tmp_path, store=store)  # done: skipped, saying how its curve ended
    out, err = again.communicate(timeout=600)
    (skipped,) = (out + err).splitlines()
    assert again.returncode == 0 and skipped.endswith(f"skipped: {run_dir} is done: {last}"), out + err


def test_cli_unknown_method_names_the_options(tmp_path):
    proc = prunelab("pruning=nonexistent", cwd=tmp_path)
    assert proc.returncode != 0 and "Available options in 'pruning'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(), reason="../shared/data is not here")
def test_mnist_loads_from_shared_data():
    cfg = compose_config("dataset=mnist", f"dataset.data_dir={SHARED_DATA}", "dataset.download=false")
    dm = build(cfg.dataset)
    dm.check()
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape[1:] == (1, 28, 28) and int(y.max()) <= 9
