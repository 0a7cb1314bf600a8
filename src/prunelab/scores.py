"""Per-run scores of one run's results (one row per stage): what W&B summaries and sweep tables share."""

import numpy as np
import pandas as pd

ACC = "test_acc"
TOLERANCE = 0.01  # one accuracy point


def dense_accuracy(run: pd.DataFrame, acc: str = ACC) -> float:
    """Accuracy of the dense model (stage 0)."""
    return float(run.loc[run["stage"] == 0, acc].iloc[0])


def final_accuracy(run: pd.DataFrame, acc: str = ACC) -> float:
    """Accuracy after the last stage."""
    return float(run.sort_values("stage")[acc].iloc[-1])


def sparsity_within(run: pd.DataFrame, tolerance: float = TOLERANCE, acc: str = ACC) -> float:
    """The highest sparsity reached whose accuracy is at most `tolerance` below dense (0 if none is)."""
    ok = run[run[acc] >= dense_accuracy(run, acc) - tolerance - 1e-9]
    return float(ok["sparsity"].max())


def accuracy_auc(run: pd.DataFrame, acc: str = ACC) -> float:
    """Area under accuracy vs sparsity: the trapezoid rule from sparsity 0 to the last sparsity reached.

    Units are accuracy x sparsity: a model that kept accuracy 1.0 up to sparsity 0.9 scores 0.9.
    """
    curve = run.sort_values("sparsity")
    return float(np.trapezoid(curve[acc], curve["sparsity"]))


def run_summary(run: pd.DataFrame) -> dict[str, float]:
    """The scalars that rank runs: dense and final accuracy, sparsity within 1 point, AUC, wall times."""
    stages = run.sort_values("stage")
    return {
        "dense_acc": dense_accuracy(run),
        "final_acc": final_accuracy(run),
        "final_sparsity": float(stages["sparsity"].iloc[-1]),
        "sparsity_within_1pt": sparsity_within(run),
        "acc_auc": accuracy_auc(run),
        "total_time_s": float(stages["wall_time_s"].iloc[-1]),
        **{f"stage_time_s/{int(s)}": float(t) for s, t in zip(stages["stage"], stages["stage_time_s"])},
    }


def final_layers(layers: pd.DataFrame) -> pd.DataFrame:
    """The last stage of a per-layer table with a `stage` column (one row per stage and layer), else all of it."""
    return layers[layers["stage"] == layers["stage"].max()] if "stage" in layers else layers
