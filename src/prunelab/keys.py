"""What each config key means for a run: the schema that hashing, caching, labels and comparisons share."""

# Keys of a group node that label it and are never passed to its `_target_`.
LABELS = ("name", "family")

# The group nodes checked against their `_target_`'s signature before any work.
GROUPS = ("model", "dataset", "pruning", "schedule", "recovery")

# Settings that change how a run is watched, stored or fed, never its results: left out of its hash.
NOT_RESULTS = (
    "task",  # what is measured and how it is ranked, less TASK_TRAINING; the model and data set choose the task
    "logger", "store_dir", "cache", "rerun", "export_onnx", "threads",
    "trainer.enable_progress_bar", "trainer.enable_model_summary", "trainer.log_every_n_steps",
    "metrics.latency_stages", "dataset.data_dir", "dataset.download", "dataset.num_workers",
    "dataset.eval_batch_size", "dataset.cache_dir",
)

# The task's settings that change what is trained (its module's, such as label smoothing, less `_target_` and
# `_partial_`): hashed, and part of the dense model's settings, whenever they differ from their defaults.
TASK_TRAINING = ("task", "module")

# A group's choice that does what runs did before the group existed, by its `_target_`: left out of a run's hash
# when it has no other setting, so that those runs keep their keys (and a rerun continues them).
UNCHANGED = {"recovery": "prunelab.training.recovery.FullFineTuning"}

# The top-level nodes that determine the dense model ...
DENSE_NODES = ("seed", "model", "dataset", "optimizer", "scheduler", "trainer", "channels_last", "schedule", "task")
# ... less the schedule's settings that only act after dense training.
AFTER_DENSE = ("schedule.name", "schedule._target_", "schedule.targets", "schedule.finetune_epochs", "schedule.retrain",
               "schedule.cumulative")

# Config nodes whose settings tell two series of a comparison apart (leaf keys named `seed` never do).
SERIES_NODES = ("pruning", "schedule", "recovery", "model", "dataset")
