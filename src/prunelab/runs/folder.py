"""The one writer of a run folder: its tables, dense weights, masks and status, through `RunPaths`."""

import json
from typing import TYPE_CHECKING

from prunelab import atomic
from prunelab import results as results_schema
from prunelab.errors import ConfigError
from prunelab.paths import RunPaths
from prunelab.tasks import CLASSIFICATION, Task

if TYPE_CHECKING:  # the sweep summary reads statuses without loading torch; a bad config answers without pandas
    import pandas as pd

    from prunelab.training.engine import StageRecord


class RunFolder:
    """The engine's sink for the run folder: results.csv and layer_sparsity.csv after every stage (atomically),
    the dense weights after stage 0, every stage's masks when the schedule saves them."""

    def __init__(self, paths: RunPaths):
        self.paths = paths

    def start(self) -> None:
        self.paths.root.mkdir(parents=True, exist_ok=True)

    def stage_done(self, record: "StageRecord") -> None:
        atomic.write_table(self.paths.results, record.rows)
        atomic.write_table(self.paths.layers, record.layer_rows)
        if record.stage == 0:
            atomic.save_torch(self.paths.dense, record.model.state_dict())
        elif record.stage_masks:
            atomic.save_torch(self.paths.masks, record.stage_masks)

    def run_done(self, rows: list[dict]) -> None:
        pass


def read_status(paths: RunPaths) -> dict:
    """The run's status.json (`{}` when there is none, or it is damaged: the run is not done)."""
    try:
        return json.loads(paths.status.read_text()) if paths.status.is_file() else {}
    except (ValueError, UnicodeDecodeError):
        return {}


def read_results(paths: RunPaths, task: Task = CLASSIFICATION) -> "pd.DataFrame":
    """The run's results.csv; a ConfigError saying how to recover when it is damaged (no rows of `task`'s metric)."""
    import pandas as pd

    try:
        results = pd.read_csv(paths.results)
    except (ValueError, UnicodeDecodeError) as err:  # pandas' parser and empty-file errors are ValueErrors
        why = str(err).splitlines()[0]
    else:
        column = results_schema.val(task.metric.name)
        if column in results and len(results):
            return results
        why = f"no {column} rows"
    raise ConfigError("store_dir", f"{paths.results} is damaged ({why})",
                      f"delete {paths.root} to run it again, or rerun=true")


def write_status(paths: RunPaths, status: dict) -> None:
    """Write status.json atomically."""
    paths.root.mkdir(parents=True, exist_ok=True)
    atomic.write_json(paths.status, status)


def read_onnx(paths: RunPaths) -> dict:
    """The run's onnx.json (`{}` when there is none)."""
    return json.loads(paths.onnx_record.read_text()) if paths.onnx_record.is_file() else {}


def write_onnx(paths: RunPaths, record: dict) -> None:
    """Write onnx.json atomically."""
    atomic.write_json(paths.onnx_record, record)


def read_protocol(paths: RunPaths) -> dict:
    """The run's protocol.json (`{}` when there is none)."""
    return json.loads(paths.protocol.read_text()) if paths.protocol.is_file() else {}


def write_protocol(paths: RunPaths, protocol: dict) -> None:
    """Write protocol.json atomically."""
    atomic.write_json(paths.protocol, protocol)
