"""A run's identity from its plain config: labels, family and name. No torch, so reports load fast."""

from prunelab.results import LABELS
from prunelab.tasks import CLASSIFICATION

STRUCTURAL = "structural"  # the family that removes whole channels: its targets are channel ratios
FAMILIES = ("random", "magnitude", "gradient", "activation", STRUCTURAL, "sparse")


def default_family(method: str) -> str:
    """The family of a method whose config has no `family` key (runs from before the key existed)."""
    return "random" if "random" in method else "other"


def method_family(pruning: dict) -> str:
    """A pruning config's `family` (one of FAMILIES), else `default_family`."""
    return pruning.get("family") or default_family(pruning["name"])


def run_labels(config: dict) -> dict:
    """The labels every results row and W&B run carries (`prunelab.results.LABELS`): method, family, task,
    model, dataset, schedule, seed. Configs from before the `task` node are classification's."""
    values = (config["pruning"]["name"], method_family(config["pruning"]),
              (config.get("task") or {}).get("name", CLASSIFICATION.name), config["model"]["name"],
              config["dataset"]["name"], config["schedule"]["name"], int(config["seed"]))
    return dict(zip(LABELS, values, strict=True))


def run_name(labels: dict) -> str:
    """`<method>_<model>_<dataset>_s<seed>`: the run's folder name in the store and its W&B name."""
    return f"{labels['method']}_{labels['model']}_{labels['dataset']}_s{labels['seed']}"
