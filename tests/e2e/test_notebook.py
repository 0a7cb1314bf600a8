"""The analysis notebook runs top to bottom on a sweep and shows the curves, the tables and per-layer sparsity."""

import nbformat
from nbclient import NotebookClient

from tests.helpers import ROOT, write_sweep

NOTEBOOK = ROOT / "notebooks" / "compare_methods.ipynb"


def test_notebook_defines_no_analysis_code_of_its_own():
    code = [cell.source for cell in nbformat.read(NOTEBOOK, as_version=4).cells if cell.cell_type == "code"]
    assert not any(line.lstrip().startswith(("def ", "class ", "for ", "import pandas", "import matplotlib"))
                   for source in code for line in source.splitlines())
    assert "PRUNELAB_SWEEP" in code[0], "the first code cell holds the parameters"


def test_notebook_runs_on_a_sweep(tmp_path, monkeypatch):
    write_sweep(tmp_path / "sweep", {"random": [0.9, 0.6, 0.3]}, family="random")
    write_sweep(tmp_path / "sweep", {"magnitude": [0.9, 0.88, 0.85]}, family="magnitude")
    monkeypatch.setenv("PRUNELAB_SWEEP", str(tmp_path / "sweep"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "".join(o.get("text", "") + o.get("data", {}).get("text/markdown", "") for o in outputs)
    assert "4 runs, 0 left out" in text
    assert "| magnitude | magnitude | 2 | **90.50 ± 0.71** | **88.50 ± 0.71** | **85.50 ± 0.71** |" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2, "the curves and the per-layer bars"
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "fc1.weight" in html and "sparsity_mean" in html
