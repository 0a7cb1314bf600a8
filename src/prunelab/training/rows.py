"""Results rows, built by pure functions: one row per stage, one per stage and layer."""

from prunelab.training.meter import LayerCost


def stage_row(labels: dict, stage: int, target: float, sparsity: float, params: int, nonzero: int,
              empty_layers: int, compute: dict, acc_before_ft: float, val: dict, test: dict, epoch: int,
              stage_time_s: float, wall_time_s: float) -> dict:
    """The results row of a finished stage (the columns of results.csv, in order)."""
    return {
        **labels,
        "stage": stage,
        "target_sparsity": target,
        "sparsity": sparsity,
        "params": params,
        "nonzero_params": nonzero,
        "empty_layers": empty_layers,
        **compute,
        "acc_before_ft": acc_before_ft,
        "val_acc": val["acc"],
        "test_acc": test["acc"],
        **({"test_acc_top5": test["acc_top5"]} if "acc_top5" in test else {}),
        "epoch": epoch,
        "stage_time_s": stage_time_s,
        "wall_time_s": wall_time_s,
    }


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
