"""The `prunelab` command: a Hydra app over conf/."""

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from prunelab.errors import ConfigError

CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> None:
    """Run one pruning experiment (or one job of a multirun sweep)."""
    from prunelab.run import run

    try:
        run(cfg, Path(HydraConfig.get().runtime.output_dir))
    except ConfigError as err:
        print(f"prunelab: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
