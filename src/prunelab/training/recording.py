"""Recording a stage: what a finished stage measured, and its results rows (pure functions).

The one place that names results.csv's columns and sets their order, and layers.csv's.
"""

from dataclasses import dataclass

from prunelab.training.meter import LayerCost


@dataclass(frozen=True)
class StageMeasures:
    """What a finished stage measured."""

    stage: int
    target: float  # the stage's target sparsity (0 for dense training)
    sparsity: float  # the fraction of the dense model's prunable weights removed or held at zero
    params: int
    nonzero: int
    empty_layers: int  # prunable tensors with no weight left
    compute: dict  # `Meter.measure`'s columns
    acc_before_ft: float
    val: dict  # the host's evaluation of the validation split
    test: dict  # and of the test split
    epoch: int
    stage_time_s: float
    wall_time_s: float


def stage_row(labels: dict, m: StageMeasures) -> dict:
    """The results row of a finished stage (the columns of results.csv, in order)."""
    return {
        **labels,
        "stage": m.stage,
        "target_sparsity": m.target,
        "sparsity": m.sparsity,
        "params": m.params,
        "nonzero_params": m.nonzero,
        "empty_layers": m.empty_layers,
        **m.compute,
        "acc_before_ft": m.acc_before_ft,
        "val_acc": m.val["acc"],
        "test_acc": m.test["acc"],
        **({"test_acc_top5": m.test["acc_top5"]} if "acc_top5" in m.test else {}),
        "epoch": m.epoch,
        "stage_time_s": m.stage_time_s,
        "wall_time_s": m.wall_time_s,
    }


def has_row(rows: list[dict], stage: int) -> bool:
    """Whether `rows` hold the row of `stage`."""
    return any(r["stage"] == stage for r in rows)


def dense_macs(rows: list[dict]) -> float:
    """The dense model's MACs, from its row (stage 0, the first)."""
    return rows[0]["macs"]


def layer_rows(stage: int, costs: dict[str, LayerCost], dense: dict[str, int]) -> list[dict]:
    """One row per weighted layer: its weights now, nonzero, and the fraction of its dense weights gone."""
    return [
        {"stage": stage, "layer": name, "params": c.params, "nonzero_params": c.nonzero,
         "sparsity": 1.0 - c.nonzero / dense.get(name, c.params)}
        for name, c in costs.items() if c.params
    ]


def dense_layer_params(layer_rows_so_far: list[dict]) -> dict[str, int]:
    """Each layer's weights in the dense stage (stage 0), from the layer rows written so far."""
    return {r["layer"]: r["params"] for r in layer_rows_so_far if r["stage"] == 0}
