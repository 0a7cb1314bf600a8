"""`prunelab.prune`: one-off pruning by the name of a `pruning` option; `import prunelab` stays light."""

import subprocess
import sys

import pytest
import torch

import prunelab
from prunelab.errors import ConfigError
from prunelab.models import DigitsCNN
from tests.helpers import ROOT, options


def digits_cnn():
    torch.manual_seed(0)
    return DigitsCNN([1, 8, 8], 10)


def batches():
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(16, 1, 8, 8, generator=g), torch.randint(0, 10, (16,), generator=g))]


def test_import_prunelab_loads_no_torch():
    code = "import sys, prunelab; assert 'torch' not in sys.modules; prunelab.prune; assert 'torch' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": str(ROOT / "src")})


def test_the_methods_are_the_pruning_options():
    assert prunelab.methods() == options("pruning")


@pytest.mark.parametrize("method", ["magnitude", "snip"])
def test_unstructured_methods_return_masks_and_leave_the_model_as_it_was(method):
    model = digits_cnn()
    before = {n: p.clone() for n, p in model.named_parameters()}
    out = prunelab.prune(model, method, target=0.9, batches=batches())
    kept = sum(int(m.sum()) for m in out.masks.values()) / sum(m.numel() for m in out.masks.values())
    assert kept == pytest.approx(0.1, abs=1e-3)
    params = dict(out.model.named_parameters())
    assert all(torch.all(params[n][~m] == 0) for n, m in out.masks.items())
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    assert out.weight_sparsity == pytest.approx(0.9, abs=1e-3)  # the prunable weights, as results.csv counts them
    assert 0.85 < out.param_sparsity < 0.9  # every tensor: the classifier and biases stay dense


def test_structural_methods_return_the_model_with_channels_removed():
    out = prunelab.prune(digits_cnn(), "l1_filter", target=0.5, batches=batches(), scope="layer")
    assert out.masks == {} and next(m for m in out.model.modules() if isinstance(m, torch.nn.Conv2d)).out_channels == 16
    assert out.model(torch.randn(2, 1, 8, 8)).shape == (2, 10) and out.param_sparsity > 0.5
    dense = prunelab.pruner("l1_filter").weights(digits_cnn())
    pruned = prunelab.pruner("l1_filter").weights(out.model)
    removed = 1 - sum(int(w.count_nonzero()) for w in pruned.values()) / sum(w.numel() for w in dense.values())
    assert out.weight_sparsity == pytest.approx(removed)


def test_settings_override_the_option_and_bad_names_are_config_errors():
    assert prunelab.pruner("magnitude", scope="layer").scope == "layer"
    with pytest.raises(ConfigError, match="unknown method 'magnitud'"):
        prunelab.prune(digits_cnn(), "magnitud")
    with pytest.raises(ConfigError, match="pass batches="):
        prunelab.prune(digits_cnn(), "snip")
