"""The Trainer's hardware settings, checked by Lightning itself before data or model are built."""

from pytorch_lightning.trainer.connectors.accelerator_connector import (
    _AcceleratorConnector,
)
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from prunelab.errors import ConfigError

# In the order Lightning resolves them: the first key whose addition Lightning rejects is the one named.
FIXES = {
    "accelerator": "use trainer=cpu, or an accelerator this machine has (trainer.accelerator=cpu|gpu|auto)",
    "devices": "use a device count the accelerator has, e.g. trainer.devices=1",
    "num_nodes": "use trainer.num_nodes=1 or the number of machines that run this job",
    "strategy": "use trainer.strategy=auto, or ddp with more than one device",
    "precision": "use e.g. trainer.precision=32-true (or 16-mixed, bf16-mixed on a GPU)",
}


def check_trainer(trainer: dict) -> None:
    """Raise a ConfigError naming `trainer.<key>` for the first hardware setting Lightning would reject."""
    given = {}
    for key, fix in FIXES.items():
        if key not in trainer:
            continue
        given[key] = trainer[key]
        try:
            _AcceleratorConnector(**given)
        except (MisconfigurationException, ValueError, TypeError) as err:
            problem = f"{trainer[key]!r} is rejected by Lightning: {str(err).splitlines()[0].rstrip('.')}"
            raise ConfigError(f"trainer.{key}", problem, fix) from None
