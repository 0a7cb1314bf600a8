"""`prunelab.prune`: one-off pruning by the name of a `pruning` option; `import prunelab` stays light."""

import subprocess
import sys

import pytest
import torch

import prunelab
from prunelab.errors import ConfigError
from prunelab.models import DigitsCNN
from tests.helpers import PLUGINS_DOC, ROOT, example_files, options


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


@pytest.mark.parametrize("target", [1.5, 1.0, -0.2])
def test_a_target_outside_0_1_is_a_config_error_naming_it(target):
    with pytest.raises(ConfigError, match=r"target: .* is not in \[0, 1\)"):
        prunelab.prune(digits_cnn(), "magnitude", target=target)


def test_a_misspelled_setting_is_a_config_error_listing_the_settings():
    with pytest.raises(ConfigError, match=r"pruning\.scpoe: is not a setting .*the settings are \[.*'scope'"):
        prunelab.prune(digits_cnn(), "magnitude", 0.5, scpoe="layer")
    with pytest.raises(ConfigError, match=r"pruning\.scope: unknown scope 3\. Fix: use one of \['global'"):
        prunelab.pruner("magnitude", scope=3)


def test_structural_methods_with_remove_false_return_the_model_with_its_channels_zeroed():
    model = digits_cnn()
    out = prunelab.prune(model, "l1_filter", target=0.5, batches=batches(), scope="layer", remove=False)
    params = dict(out.model.named_parameters())
    assert dict(model.named_parameters()).keys() == params.keys()  # shapes kept
    assert any(not m.all() for m in out.masks.values())
    assert all(torch.all(params[n][~m] == 0) for n, m in out.masks.items())
    conv = next(m for m in out.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert int((conv.weight.flatten(1).abs().sum(1) == 0).sum()) == conv.out_channels // 2  # whole filters zeroed
    removed = prunelab.prune(model, "l1_filter", target=0.5, batches=batches(), scope="layer")
    assert out.weight_sparsity == pytest.approx(removed.weight_sparsity, abs=0.02)


@pytest.mark.parametrize("method", ["l1_filter", "random_channel", "wanda"])
def test_methods_that_need_no_loss_take_unlabelled_batches(method):
    labelled = prunelab.prune(digits_cnn(), method, 0.5, batches=batches())
    inputs_only = prunelab.prune(digits_cnn(), method, 0.5, batches=[x for x, _ in batches()])
    assert inputs_only.weight_sparsity == labelled.weight_sparsity > 0.3
    assert all(torch.equal(a, b) for a, b in zip(inputs_only.model.parameters(), labelled.model.parameters()))


@pytest.mark.parametrize("method", ["snip", "taylor_channel"])
def test_methods_that_score_with_the_loss_ask_for_labels(method):
    with pytest.raises(ConfigError, match=f"batches: {method} scores with the loss, which needs labels"):
        prunelab.prune(digits_cnn(), method, 0.5, batches=[x for x, _ in batches()])


OPTIMIZERS = {"sgd momentum + weight decay": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=5e-3),
              "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1)}


def fine_tune(model, optimizer, steps: int = 25) -> None:
    for x, y in batches() * steps:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def pruned_and_kept(out):
    params = dict(out.model.named_parameters())
    return ({n: params[n].detach()[~m].clone() for n, m in out.masks.items()},
            {n: params[n].detach()[m].clone() for n, m in out.masks.items()})


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_hold_masks_keeps_pruned_weights_at_zero_in_your_own_loop(optimizer):
    out = prunelab.prune(digits_cnn(), "magnitude", 0.9, scope="layer")
    _, kept_before = pruned_and_kept(out)
    opt = OPTIMIZERS[optimizer](out.model.parameters())
    with prunelab.hold_masks(out.model, out.masks, opt):
        fine_tune(out.model, opt)
    pruned, kept = pruned_and_kept(out)
    assert all(torch.all(w == 0) for w in pruned.values())
    moved = sum(int((kept[n] != kept_before[n]).sum()) for n in kept) / sum(w.numel() for w in kept.values())
    assert moved > 0.9
    fine_tune(out.model, opt, steps=1)  # the block has ended: nothing holds them now
    assert any(w.count_nonzero() for w in pruned_and_kept(out)[0].values())


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_without_hold_masks_fine_tuning_revives_pruned_weights(optimizer):
    out = prunelab.prune(digits_cnn(), "magnitude", 0.9, scope="layer")
    fine_tune(out.model, OPTIMIZERS[optimizer](out.model.parameters()))
    pruned, _ = pruned_and_kept(out)
    revived = sum(int(w.count_nonzero()) for w in pruned.values()) / sum(w.numel() for w in pruned.values())
    assert revived > 0.5


def test_hold_masks_of_another_model_is_a_config_error():
    out = prunelab.prune(digits_cnn(), "magnitude", 0.9)
    other = torch.nn.Linear(3, 2)
    with pytest.raises(ConfigError, match="masks: .* name no parameter of the model"):
        prunelab.hold_masks(other, out.masks, torch.optim.SGD(other.parameters(), lr=0.1))


@pytest.mark.parametrize("doc", [ROOT / "README.md", PLUGINS_DOC], ids=lambda p: p.name)
def test_the_documented_python_api_example_runs_and_holds_the_masks(doc):
    code = example_files(doc.read_text())["one_off.py"]
    torch.manual_seed(0)
    names = {}
    exec(compile(code, f"{doc.name}:one_off.py", "exec"), names)  # noqa: S102 - the documented example itself
    out, small, held, dense = names["out"], names["small"], names["held"], dict(names["model"].named_parameters())
    tuned = dict(out.model.named_parameters())
    assert all(torch.all(tuned[n][~m] == 0) and torch.all(tuned[n][m] != dense[n][m]) for n, m in out.masks.items())
    assert small.masks == {} and small.param_sparsity > 0.5
    zeroed = dict(held.model.named_parameters())
    assert held.masks and all(torch.all(zeroed[n][~m] == 0) for n, m in held.masks.items())
