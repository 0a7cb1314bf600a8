"""A wheel built from the repository ships the configs (the top-level conf/, as prunelab/conf): installed (not
editable) in a fresh virtual environment, its `prunelab` command composes and runs a tiny run outside the checkout."""

import os
import subprocess
import sys
import zipfile

import pandas as pd
import pytest

from tests.helpers import ROOT, TINY


@pytest.mark.slow  # starts the command or a multirun: the slow suite (pytest -m slow) runs it
def test_an_installed_wheel_composes_and_runs_a_tiny_run(tmp_path):
    dist, venv = tmp_path / "dist", tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(ROOT)], check=True, capture_output=True)
    (wheel,) = dist.glob("prunelab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    # the top-level conf/ ships as the package prunelab.conf (Hydra's pkg:// needs its __init__.py)
    configs = {f"prunelab/conf/{p.relative_to(ROOT / 'conf').as_posix()}" for p in (ROOT / "conf").rglob("*.yaml")}
    assert "prunelab/conf/config.yaml" in configs and "prunelab/conf/__init__.py" in names
    assert configs <= names, sorted(configs - names)
    # torch and the rest come from this environment; prunelab itself only from the wheel
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed",
                    str(wheel)], check=True,
                   capture_output=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = "import prunelab, prunelab.conf; print(prunelab.__file__, prunelab.conf.__file__)"
    where = subprocess.run([str(python), "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                           check=True).stdout.split()
    assert all(w.startswith(str(venv)) for w in where), where
    proc = subprocess.run([str(venv / "bin" / "prunelab"), *TINY, "dataset=synthetic", "store_dir=null",
                           f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = pd.read_csv(tmp_path / "run" / "results.csv")
    assert results["target_sparsity"].tolist() == [0.0, 0.5, 0.8]
