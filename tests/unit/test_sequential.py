"""Block-sequential Wanda and SparseGPT on causal LMs: the same masks and weights as plain ports of the papers'
code (benchmarks/llm_ports.py) on tiny LLaMA, GPT-2 and OPT models, and each decoder layer calibrated on the
outputs of the already pruned layers before it."""

import copy

import pytest
import torch
from torch import nn

from benchmarks import llm_ports
from prunelab.errors import ConfigError
from prunelab.models import causal_lm
from prunelab.models.decoder import decoder
from prunelab.pruning.calibration import Calibration
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.masks import prunable_parameters
from prunelab.pruning.sequential import first_inputs, walk
from prunelab.pruning.sparsegpt import SparseGPT
from prunelab.pruning.wanda import WandaPruner

VOCAB, LENGTH, SAMPLES = 96, 16, 12
SIZES = {
    "llama": {"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3,
              "num_attention_heads": 4, "max_position_embeddings": LENGTH},
    "gpt2": {"model_type": "gpt2", "n_embd": 32, "n_layer": 3, "n_head": 4, "n_positions": LENGTH,
             "bos_token_id": 0, "eos_token_id": 0},
    "opt": {"model_type": "opt", "hidden_size": 32, "ffn_dim": 64, "num_hidden_layers": 3, "num_attention_heads": 4,
            "max_position_embeddings": LENGTH, "word_embed_proj_dim": 32},
}
PATTERNS = {"50%": ("unstructured", 0.5, 0, 0), "2:4": ("2:4", 0.5, 2, 4), "4:8": ("4:8", 0.5, 4, 8)}


def tiny(kind: str) -> nn.Module:
    torch.manual_seed(0)
    model = causal_lm(config={"vocab_size": VOCAB, **SIZES[kind]})
    with torch.no_grad():  # weights of a trained model's spread: outliers in some input features
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(1 + 3 * torch.rand(p.shape[1]).pow(4))
    return model.eval()


def samples(seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (SAMPLES, LENGTH), generator=torch.Generator().manual_seed(seed))


def ctx_of(data: torch.Tensor) -> ScoreContext:
    return ScoreContext(batches=lambda: iter(()), loss=nn.functional.cross_entropy,
                        generator=torch.Generator().manual_seed(0), calibration=lambda n, seed: data[:n])


def prune_with(pruner, model, data) -> dict:
    params = pruner.parameters(model)
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()}
    return pruner.prune(model, masks, 0.5, ctx_of(data))


def decoder_linears(model) -> dict[str, nn.Parameter]:
    return prunable_parameters(model, (), True)


def calibration() -> Calibration:
    return Calibration(num_samples=SAMPLES, batch_size=5)  # batches of 5, 5, 2: unlike the ports' one at a time


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("kind", SIZES)
def test_block_sequential_wanda_gives_the_masks_of_the_papers_code(kind, pattern):
    name, target, n, m = PATTERNS[pattern]
    ours, port, data = tiny(kind), tiny(kind), samples()
    masks = prune_with(WandaPruner(calibration(), pattern=name), ours, data)
    llm_ports.prune_wanda(port, decoder(port).layers, data, target, n, m)
    theirs = {k: p != 0 for k, p in decoder_linears(port).items()}
    assert masks.keys() == theirs.keys() and len(masks) == {"llama": 21, "gpt2": 12, "opt": 18}[kind]
    for k in masks:
        assert torch.equal(masks[k], theirs[k]), k
        assert float((~masks[k]).float().mean()) == pytest.approx(target)


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("kind", SIZES)
def test_block_sequential_sparsegpt_gives_the_weights_of_the_papers_code(kind, pattern):
    name, target, n, m = PATTERNS[pattern]
    ours, port, data = tiny(kind), tiny(kind), samples()
    masks = prune_with(SparseGPT(calibration(), pattern=name, block_size=16), ours, data)
    llm_ports.prune_sparsegpt(port, decoder(port).layers, data, target, n, m, blocksize=16)
    theirs = decoder_linears(port)
    for k, mask in masks.items():
        w, ref = decoder_linears(ours)[k], theirs[k]
        assert torch.equal(w != 0, mask)
        assert float((~mask).float().mean()) == pytest.approx(target)
        # the port's per-block threshold `tmp <= sort(tmp)[int(numel * sparsity)]` prunes one more weight per block
        extra = 0 if n else -(-w.shape[1] // 16)
        assert int((ref == 0).sum()) == int((~mask).sum()) + extra
        assert (mask & (ref == 0)).sum() <= extra + 0.01 * mask.numel(), k
        if n:
            torch.testing.assert_close(w, ref, atol=1e-4, rtol=1e-3)


def test_each_decoder_layer_is_calibrated_on_the_outputs_of_the_pruned_layers_before_it():
    model, data = tiny("llama"), samples()
    layers = decoder(model).layers
    seen = {i: [] for i in range(len(layers))}
    hooks = [layer.register_forward_pre_hook(lambda mod, args, i=i: seen[i].append(args[0].clone()))
             for i, layer in enumerate(layers)]
    dense = copy.deepcopy(model)
    prune_with(WandaPruner(calibration()), model, data)
    for h in hooks:
        h.remove()
    for i in range(len(layers)):
        # two passes per layer (statistics, then outputs) over 3 batches (the first layer: after the pass that
        # captures its inputs); the inputs are those of the final pruned model's layer
        expected = first_inputs(model, layers[i], list(data.split(5)), data.device).args
        assert len(seen[i]) == 6 + 3 * (i == 0)
        for got, want in zip(seen[i][-6:], [a[0] for a in expected] * 2):
            torch.testing.assert_close(got, want)
    # the dense model feeds the last layer other inputs: the propagation is what the test above checks
    dense_in = first_inputs(dense, decoder(dense).layers[2], [data], data.device).args[0][0]
    assert not torch.allclose(dense_in, torch.cat([a[0] for a in expected]), atol=1e-3)


def test_only_one_decoder_layer_runs_at_a_time_and_each_once_per_pass():
    model, data = tiny("opt"), samples()
    calls = []
    for i, layer in enumerate(decoder(model).layers):
        layer.register_forward_pre_hook(lambda mod, args, i=i: calls.append(i))
    walk(model, decoder_linears(model), list(data.split(6)), lambda *a: None, lambda names: None)
    # the capture of the first layer's inputs (2 batches, stopped there), then per layer 2 batches for the
    # statistics and 2 for the outputs; the model as a whole never runs again
    assert calls == [0] * 2 + [0] * 4 + [1] * 4 + [2] * 4


def test_sequential_and_one_pass_wanda_differ_after_the_first_decoder_layer():
    data = samples()
    seq, one = tiny("llama"), tiny("llama")
    a = prune_with(WandaPruner(calibration(), sequential=True), seq, data)
    b = prune_with(WandaPruner(calibration(), sequential=False), one, data)
    first = [k for k in a if ".layers.0." in k]
    assert all(torch.equal(a[k], b[k]) for k in first[:3])  # q, k, v see the dense embeddings in both
    assert any(not torch.equal(a[k], b[k]) for k in a if ".layers.2." in k)


def test_the_pruning_device_must_be_a_torch_device():
    with pytest.raises(ConfigError, match="pruning.calibration.device"):
        Calibration(device="gpu9")


def test_a_pruning_device_moves_each_layer_there_and_back_with_the_same_masks():
    data = samples()
    here, moved = tiny("llama"), tiny("llama")
    seen = []
    for layer in decoder(moved).layers:
        layer.register_forward_pre_hook(lambda mod, args: seen.append(next(mod.parameters()).device.type))
    a = prune_with(WandaPruner(calibration()), here, data)
    b = prune_with(WandaPruner(Calibration(num_samples=SAMPLES, batch_size=5, device="cpu")), moved, data)
    assert all(torch.equal(a[k], b[k]) for k in a) and set(seen) == {"cpu"}
    assert {p.device.type for p in moved.parameters()} == {"cpu"}
