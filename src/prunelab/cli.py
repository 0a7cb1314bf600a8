"""The `prunelab` command: a Hydra app over the configs shipped with the package (`prunelab.conf`)."""

import os
import sys
import warnings
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from prunelab.errors import ConfigError, Diverged, Interrupted


# a package, not a file path: the top-level conf/ in an editable install, prunelab/conf from a wheel
@hydra.main(version_base="1.3", config_path="pkg://prunelab.conf", config_name="config")
def app(cfg: DictConfig) -> float:
    """Run one pruning experiment (or one job of a multirun sweep); returns the sweep objective."""
    from prunelab.runs.job import execute

    # Lightning 2.6 builds torch's deprecated LeafSpec: a note for Lightning's developers, not for the reader of a run
    warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning)
    hydra_cfg = HydraConfig.get()
    try:
        return execute(cfg, Path(hydra_cfg.runtime.output_dir), isolate=hydra_cfg.mode == RunMode.MULTIRUN)
    except ConfigError as err:
        print(f"prunelab: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except Diverged as err:
        print(f"prunelab: run failed: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    except Interrupted as err:
        print(f"prunelab: interrupted: {err}", file=sys.stderr)
        raise SystemExit(130) from None  # the shell's code for Ctrl-C
    except KeyboardInterrupt:
        print("prunelab: interrupted before the run started", file=sys.stderr)
        raise SystemExit(130) from None


def main() -> None:
    """The `prunelab` console script, and `python -m prunelab`: the working directory comes first on Python's
    search path, as `python -m` puts it, so a `_target_` in a module beside your configs imports."""
    cwd = os.getcwd()
    if sys.path[:1] != [cwd]:
        sys.path.insert(0, cwd)
    app()
