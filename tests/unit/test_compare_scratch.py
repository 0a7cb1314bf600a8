"""Scratch controls in a comparison: their own line style in their method's colour, and the verdict table."""

from prunelab.analysis.aggregate import aggregate
from prunelab.analysis.figures import RETRAIN_STYLES, series_styles
from prunelab.analysis.gather import Run, build_sweep
from prunelab.analysis.tables import scratch_table
from prunelab.tasks import CLASSIFICATION
from tests.helpers import fake_results


def sweep():
    runs = []
    for retrain, accs in [("finetune", [0.9, 0.88, 0.80]), ("scratch_b", [0.9, 0.879, 0.70])]:
        for seed in (0, 1):
            rows = fake_results("l1_filter", seed, [a + 0.002 * seed for a in accs], family="structural")
            runs.append(Run(f"{retrain}{seed}", rows, {"schedule.retrain": retrain, "schedule.name": "oneshot"}))
    return build_sweep(runs, [])


def test_a_control_is_labelled_by_its_retraining_and_drawn_in_its_methods_colour():
    runs = sweep().runs
    assert set(runs["series"]) == {"l1_filter (schedule.retrain=finetune)", "l1_filter (schedule.retrain=scratch_b)"}
    assert set(runs["base"]) == {"l1_filter"}
    styles = series_styles(aggregate(runs))
    tuned, control = styles["l1_filter (schedule.retrain=finetune)"], styles["l1_filter (schedule.retrain=scratch_b)"]
    assert tuned["color"] == control["color"] and control["linestyle"] == RETRAIN_STYLES["scratch_b"]
    assert tuned["linestyle"] == "--"  # the structural family's


def test_the_table_says_per_target_whether_fine_tuning_beat_scratch_beyond_the_spread():
    table = scratch_table(aggregate(sweep().runs), CLASSIFICATION)
    lines = table.splitlines()
    assert "| l1_filter | scratch_b | 50% |" in lines[2] and lines[2].endswith("| +0.10 | within the spread |")
    assert "| 80% |" in lines[3] and lines[3].endswith("| +10.00 | fine-tuning better |")
