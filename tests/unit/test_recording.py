"""A stage's results row: every measure under its column, in results.csv's order."""

import math

from prunelab.training.recording import StageMeasures, has_row, stage_line, stage_row


def measures(test: dict) -> StageMeasures:
    return StageMeasures(stage=1, target=0.5, weight_sparsity=0.49, param_sparsity=0.45, params=100, nonzero=51,
                         empty_layers=0, compute={"macs": 10, "nonzero_macs": 5}, metric="acc", before_ft=0.7,
                         test_before_ft=float("nan"),
                         val={"acc": 0.8}, test=test, epoch=3, stage_time_s=1.5, wall_time_s=4.0)


def test_a_stage_row_has_the_labels_then_the_measures_in_order():
    row = stage_row({"seed": 0, "method": "magnitude", "task": "classification"}, measures({"acc": 0.75}))
    assert list(row.items()) == [
        ("method", "magnitude"), ("task", "classification"), ("seed", 0), ("stage", 1), ("target_sparsity", 0.5),
        ("weight_sparsity", 0.49), ("param_sparsity", 0.45),
        ("params", 100), ("nonzero_params", 51), ("empty_layers", 0), ("macs", 10), ("nonzero_macs", 5),
        ("acc_before_ft", 0.7), ("test_acc_before_ft", row["test_acc_before_ft"]), ("val_acc", 0.8), ("test_acc", 0.75), ("epoch", 3), ("stage_time_s", 1.5),
        ("wall_time_s", 4.0)]
    assert math.isnan(row["test_acc_before_ft"]) and has_row([row], 1) and not has_row([row], 2)


def test_top5_accuracy_has_its_column_after_top1_when_measured():
    row = stage_row({}, measures({"acc": 0.75, "acc_top5": 0.95}))
    assert list(row)[list(row).index("test_acc") + 1] == "test_acc_top5" and row["test_acc_top5"] == 0.95


def test_a_lower_is_better_metric_names_its_own_columns():
    m = StageMeasures(stage=1, target=0.5, weight_sparsity=0.5, param_sparsity=0.4, params=10, nonzero=6, empty_layers=0,
                      compute={}, metric="ppl", before_ft=40.0, test_before_ft=41.0, val={"ppl": 30.0}, test={"ppl": 31.0}, epoch=1,
                      stage_time_s=1.0, wall_time_s=2.0)
    row = stage_row({}, m)
    assert (row["ppl_before_ft"], row["test_ppl_before_ft"], row["val_ppl"], row["test_ppl"]) == (40.0, 41.0, 30.0, 31.0) and "test_acc" not in row


def test_a_stage_line_says_the_target_both_sparsities_and_the_metric_before_and_after_fine_tuning():
    row = stage_row({}, measures({"acc": 0.75}))
    assert stage_line(row, 3, "acc") == ("stage 1/3  target 0.5000  weights pruned 0.4900 (parameters 0.4500)  acc"
                                         " before ft 0.7000 -> after ft 0.8000  (test 0.7500)")
    older = {k: v for k, v in row.items() if k != "param_sparsity"}  # a results.csv of before the column
    assert "(parameters nan)" in stage_line(older, 3, "acc")
