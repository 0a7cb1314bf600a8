"""A user's own criterion, structural importance, model and data set, written as docs/plugins.md shows, run
through the unchanged `prunelab` command with their config folder on Hydra's search path."""

import os
import re
import shlex
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from prunelab.analysis.gather import gather
from tests.helpers import PLUGINS_DOC as DOC
from tests.helpers import ROOT, TINY, example_files


def example_commands(doc: str) -> dict[str, list[str]]:
    """The documented `prunelab ...` commands, by the pruning option each runs."""
    commands = re.findall(r"^prunelab (.+)$", doc, flags=re.M)
    return {re.search(r"pruning=(\w+)", c).group(1): shlex.split(c) for c in commands}


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory):
    """The documented package and config folder, written into a folder of their own."""
    folder = tmp_path_factory.mktemp("user")
    for path, text in example_files(DOC.read_text()).items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text)
    return folder


def as_a_user_runs(*args: str, cwd, store, module: bool = False) -> subprocess.CompletedProcess:
    """The documented command run as a user runs it, through the `prunelab` console script on PATH (or
    `python -m prunelab`), from the plugin's folder, which is on no PYTHONPATH. A suite started with
    PYTHONPATH (a checkout tested without installing it) keeps the package's src on it, and only that."""
    command = [sys.executable, "-m", "prunelab"] if module else [shutil.which("prunelab")]
    assert command[0], "the `prunelab` console script is not on PATH: pip install the package"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PRUNELAB_STORE": str(store)}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = str(ROOT / "src")
    return subprocess.run([*command, *args], cwd=cwd, env=env, text=True, capture_output=True, timeout=300)


@pytest.mark.parametrize("method, family, module", [
    ("grad_magnitude", "gradient", False),
    ("grad_magnitude", "gradient", True),  # `python -m prunelab` is the same as `prunelab`
    pytest.param("row_norm", "structural", False, marks=pytest.mark.slow)])
def test_own_method_model_and_data_run_through_the_command(method, family, module, user_folder, tmp_path):
    args = example_commands(DOC.read_text())[method]
    proc = as_a_user_runs(*args, *TINY, "schedule.targets=[0.5]", f"hydra.run.dir={tmp_path / 'job'}",
                          cwd=user_folder, store=tmp_path / "store", module=module)
    err = proc.stderr
    assert proc.returncode == 0, err
    rows = pd.read_csv(tmp_path / "job" / "results.csv")
    assert rows[["method", "family", "model", "dataset"]].iloc[0].tolist() == [method, family, "two_layer", "blobs"]
    assert rows["param_sparsity"].iloc[-1] > 0.2 and rows["test_acc"].iloc[0] > 0.9
    assert len(list((tmp_path / "store" / "runs").glob(f"{method}_two_layer_blobs_s0-*"))) == 1
    assert gather([tmp_path / "job"]).runs["family"].eq(family).all()


@pytest.mark.slow  # starts the command or a multirun: the slow suite (pytest -m slow) runs it
def test_own_target_that_does_not_import_is_one_line_naming_the_module(user_folder, tmp_path):
    proc = as_a_user_runs(*example_commands(DOC.read_text())["grad_magnitude"], *TINY,
                          "pruning.criterion._target_=my_method.X", f"hydra.run.dir={tmp_path}", cwd=user_folder,
                          store=tmp_path / "store")
    err = proc.stderr
    assert proc.returncode == 2 and "Traceback" not in err
    assert "no module 'my_method'" in err and str(user_folder) in err
