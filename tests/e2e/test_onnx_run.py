"""The final model of a run goes to ONNX: checked against PyTorch, timed beside it, shown in the comparison."""

import json
import logging

import onnx
import pytest

from prunelab.analysis.compare import compare
from prunelab.analysis.gather import gather
from prunelab.paths import RunPaths
from prunelab.training import deploy
from tests.helpers import TINY, compose_config, run

LATENCIES = {"onnx_b1", "torch_b1", "onnx_b32", "torch_b32"}


def conv_filters(path) -> list[int]:
    graph = onnx.load(str(path)).graph
    weights = {n.input[1] for n in graph.node if n.op_type == "Conv"}
    return [i.dims[0] for i in graph.initializer if i.name in weights]


@pytest.mark.parametrize("pruning", ["magnitude", "l1_filter"])
def test_a_run_exports_its_final_model_to_onnx_and_times_it(pruning, tmp_path):
    run(compose_config(*TINY, f"pruning={pruning}", "export_onnx=true"), tmp_path)
    paths = RunPaths(tmp_path)
    record = json.loads(paths.onnx_record.read_text())
    assert record["error"] is None and record["matches"] and record["stage"] == 2
    assert set(record["latency_ms"]) == LATENCIES and all(v > 0 for v in record["latency_ms"].values())
    dense = [32, 64, 64]  # digits_cnn's convolutions
    filters = conv_filters(paths.onnx_model)
    assert filters == dense if pruning == "magnitude" else all(f < d for f, d in zip(filters, dense))
    md = compare(gather([tmp_path])).markdown
    assert "ONNX Runtime b32 (ms)" in md and "PyTorch b1 (ms)" in md


def test_a_failed_export_is_one_line_and_the_run_succeeds(tmp_path, monkeypatch, caplog):
    def broken(*args):
        raise RuntimeError("no ONNX function for aten::frobnicate\nmore detail")

    monkeypatch.setattr(deploy, "export_onnx", broken)
    with caplog.at_level(logging.WARNING):
        out = run(compose_config(*TINY, "export_onnx=true"), tmp_path)
    assert out.results["stage"].tolist() == [0, 1, 2]
    record = json.loads(RunPaths(tmp_path).onnx_record.read_text())
    assert record["error"] == "RuntimeError: no ONNX function for aten::frobnicate"
    assert any(r.getMessage() == f"onnx: failed ({record['error']})" for r in caplog.records)


def test_without_the_export_extra_the_run_skips_onnx_with_a_note(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(deploy, "available", lambda: False)
    with caplog.at_level(logging.INFO):
        run(compose_config(*TINY, "export_onnx=true"), tmp_path)
    assert not RunPaths(tmp_path).onnx_record.exists() and not RunPaths(tmp_path).onnx_model.exists()
    assert sum("onnx: skipped" in r.getMessage() for r in caplog.records) == 1
