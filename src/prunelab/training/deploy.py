"""ONNX deployment: export with a dynamic batch axis, check ONNX Runtime against PyTorch, time both on CPU.

Needs the `export` extra (onnx, onnxscript, onnxruntime). The export is torch's own `torch.onnx.export(...,
dynamo=True)` (torch.export, then onnxscript), which works offline; the TorchScript exporter is deprecated.
"""

import copy
import importlib.util
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from prunelab import atomic, results
from prunelab.modes import eval_mode
from prunelab.training.meter import latency_ms


@dataclass(frozen=True)
class OnnxOutcome:
    """What exporting one model to ONNX gave: the file, the largest output difference, latencies in ms.

    `latency_ms` maps `onnx_b1`, `torch_b1`, `onnx_b32`, ... to median CPU times. A failed export or
    check sets `error` (one line) and leaves the rest empty.
    """

    path: Path | None = None
    max_abs_diff: float | None = None
    matches: bool = False
    latency_ms: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    def record(self, stage: int) -> dict:
        """The outcome as plain JSON, for `stage` (the final stage): onnx.json and W&B's summary."""
        return {"stage": stage, "file": self.path.name if self.path else None, "matches": self.matches,
                "max_abs_diff": self.max_abs_diff, results.LATENCY: dict(self.latency_ms), "error": self.error}

    def summary(self) -> str:
        """The outcome in one line, for a log or a results table."""
        if self.error:
            return f"onnx: failed ({self.error})"
        verdict = "matches PyTorch" if self.matches else "DIFFERS from PyTorch"
        times = ", ".join(f"{k} {v:.2f}" for k, v in self.latency_ms.items())
        return f"onnx: {self.path} {verdict} (max |diff| {self.max_abs_diff:.2e}); CPU latency ms: {times}"


EXTRA = ("onnx", "onnxscript", "onnxruntime")


def available() -> bool:
    """Whether the `export` extra (onnx, onnxscript, onnxruntime) is installed."""
    return all(importlib.util.find_spec(name) is not None for name in EXTRA)


def export_onnx(model: nn.Module, input_shape: Sequence[int], path: Path) -> Path:
    """Write `model` (eval mode) to `path` as ONNX taking a batch of any size of `input_shape` images."""
    path = Path(path)
    device = next(model.parameters()).device
    example = torch.randn(2, *input_shape, device=device)
    with eval_mode(model), atomic.replacing(path) as tmp:  # the model's weights are small: one file, no external data
        torch.onnx.export(model, (example,), str(tmp), dynamo=True, verbose=False, external_data=False,
                          input_names=["images"], output_names=["logits"],
                          dynamic_shapes=({0: torch.export.Dim("batch")},))
    return path


def onnx_session(path: Path, threads: int = 1):
    """An ONNX Runtime CPU session for `path` with `threads` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(session, batch: torch.Tensor) -> torch.Tensor:
    """The session's first output for `batch`."""
    name = session.get_inputs()[0].name
    return torch.from_numpy(session.run(None, {name: batch.detach().cpu().numpy()})[0])


def onnx_latency_ms(session, batch: torch.Tensor, repeats: int, warmup: int) -> float:
    """Median wall time of one ONNX Runtime run over `batch`, in ms, after `warmup` untimed runs."""
    feed = {session.get_inputs()[0].name: batch.detach().cpu().numpy()}
    times = []
    for i in range(warmup + repeats):
        start = time.perf_counter()
        session.run(None, feed)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def check_onnx(model: nn.Module, input_shape: Sequence[int], path: Path, batch_sizes: Sequence[int] = (1, 32),
               threads: int = 1, repeats: int = 20, warmup: int = 3, atol: float = 1e-4,
               rtol: float = 1e-3) -> OnnxOutcome:
    """Export `model` to `path`, compare ONNX Runtime's outputs with PyTorch's on a batch, time both on CPU.

    Outputs match when every |onnx - torch| <= atol + rtol * |torch| on a batch of the largest size.
    Latencies are medians over `repeats` runs after `warmup`, PyTorch and ONNX Runtime each on
    `threads` CPU threads. Never raises: a failure is the outcome's `error`.
    """
    try:
        cpu = copy.deepcopy(model).cpu().eval()
        session = onnx_session(export_onnx(cpu, input_shape, path), threads)
        batches = {b: torch.randn(b, *input_shape, generator=torch.Generator().manual_seed(b)) for b in batch_sizes}
        batch = batches[max(batch_sizes)]
        with torch.no_grad():
            expected = cpu(batch)
        diff = (run_onnx(session, batch) - expected).abs()
        matches = bool((diff <= atol + rtol * expected.abs()).all())
        times = {}
        torch_threads = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            for b, x in batches.items():
                times[f"onnx_b{b}"] = onnx_latency_ms(session, x, repeats, warmup)
                times[f"torch_b{b}"] = latency_ms(cpu, x, repeats, warmup)
        finally:
            torch.set_num_threads(torch_threads)
        return OnnxOutcome(Path(path), float(diff.max()), matches, times)
    except Exception as err:  # noqa: BLE001 - an export that fails must not fail the run; the caller reports it
        return OnnxOutcome(error=_one_line(err))


def _one_line(err: Exception) -> str:
    # torch.onnx wraps the reason (e.g. the operator without an ONNX function) in generic errors: name the innermost
    cause = err
    while cause.__cause__ is not None:
        cause = cause.__cause__
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(cause)).strip()
    line = f"{type(err).__name__}: {text.splitlines()[0] if text else type(cause).__name__}"
    return line + (" (pip install 'prunelab[export]')" if isinstance(err, ImportError) else "")
