"""torchvision's classification models under structural pruning: each prunes half its channels (valid output,
MACs cut >= 2x) or is refused before training with one line saying why; slow graph builds say so in the log."""

import logging
import time

import pytest
import torchvision
from torch import nn

from prunelab.errors import ConfigError
from prunelab.pruning.structural import StructuralPruner
from prunelab.pruning.structural.adapter import _reporting_slow
from prunelab.pruning.structural.support import REFUSED, check_model
from tests.helpers import ROOT
from tests.structural_zoo import ZOO, sweep_one

# Measured by `python -m tests.structural_zoo` (docs/structural_zoo.md): the models refused, and why.
REFUSED_MODELS = {
    **{f"shufflenet_v2_{w}": "channel shuffle" for w in ("x0_5", "x1_0", "x1_5", "x2_0")},
    **{f"swin_{v}": "shifted-window" for v in ("t", "s", "b", "v2_t", "v2_s", "v2_b")},
    "maxvit_t": "relative position bias", "regnet_y_128gf": "parameters", "vit_h_14": "parameters",
}


def test_a_refused_family_is_named_with_why_and_what_to_use():
    with pytest.raises(ConfigError) as err:
        StructuralPruner(lambda group: None).parameters(torchvision.models.shufflenet_v2_x0_5(num_classes=10))
    assert err.value.setting == "model" and "channel shuffle" in err.value.problem
    assert "pruning=magnitude" in err.value.fix and set(REFUSED) == {"ShuffleNetV2", "SwinTransformer", "MaxVit"}


def test_a_giant_model_is_refused_for_its_size():
    giant = nn.Sequential(nn.Linear(30_000, 20_000, device="meta"))
    with pytest.raises(ConfigError, match="600M parameters"):
        check_model(giant)


def test_a_slow_step_says_so_while_it_runs_and_a_fast_one_does_not(caplog):
    with caplog.at_level(logging.INFO, logger="prunelab.pruning.structural.adapter"):
        with _reporting_slow("building the graph", after=0.05):
            time.sleep(0.3)
        with _reporting_slow("quick", after=0.5):
            pass
        time.sleep(0.6)
    assert [r.message for r in caplog.records] == ["building the graph: still running after 0.05 s (large models take"
                                                   " minutes)"]


def measured() -> list[str]:
    """The models docs/structural_zoo.md records an outcome for (all 80 since the second sweep; a swin_t row
    reads `refused (measured: failed)`: it failed before its family was refused)."""
    rows = [line.split("|")[1:3] for line in (ROOT / "docs" / "structural_zoo.md").read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| model")]
    return [name.strip() for name, outcome in rows if outcome.strip().startswith(("pruned", "refused"))]


@pytest.mark.slow
@pytest.mark.parametrize("arch", [a for a in ZOO if a in measured()])
def test_every_torchvision_model_prunes_half_its_channels_or_is_refused(arch):
    outcome = sweep_one(arch)
    if arch in REFUSED_MODELS:
        assert outcome["outcome"] == "refused" and REFUSED_MODELS[arch] in outcome["why"], outcome
    else:
        assert outcome["outcome"] == "pruned" and outcome["macs_cut"] >= 2.0, outcome
