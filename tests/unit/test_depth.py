"""Depth pruning of causal LMs: Block Influence and angular scores as computed by hand from the decoder layers'
inputs and outputs, the layers they choose, the model after removal, replay on a fresh dense model, saving
in transformers' layout, and the refusals."""

import copy

import pytest
import torch
from torch import nn

from prunelab.errors import ConfigError
from prunelab.models import causal_lm
from prunelab.models.causal_lm import save_pretrained
from prunelab.models.decoder import decoder
from prunelab.models.digits import DigitsCNN
from prunelab.pruning.calibration import Calibration
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.depth import DepthPruner, angular_distances, block_influence, hidden_states

VOCAB, LENGTH = 64, 12
SIZES = {
    "llama": {"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 4,
              "num_attention_heads": 4, "max_position_embeddings": LENGTH},
    "gpt2": {"model_type": "gpt2", "n_embd": 32, "n_layer": 4, "n_head": 4, "n_positions": LENGTH,
             "bos_token_id": 0, "eos_token_id": 0},
}


def tiny(kind: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return causal_lm(config={"vocab_size": VOCAB, **SIZES[kind]}).eval()


def ids(n: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (n, LENGTH), generator=torch.Generator().manual_seed(seed))


def ctx_of(data: torch.Tensor) -> ScoreContext:
    return ScoreContext(batches=lambda: iter(()), loss=nn.functional.cross_entropy,
                        generator=torch.Generator().manual_seed(0), calibration=lambda n, seed: data[:n])


def pruner(importance: str) -> DepthPruner:
    return DepthPruner(importance, Calibration(num_samples=6, batch_size=4))


def by_hand(model, x) -> list[torch.Tensor]:
    """Each layer's input and the last layer's output, run layer by layer through the transformers modules."""
    states = []
    layers = decoder(model).layers
    hooks = [layers[0].register_forward_pre_hook(lambda m, a, k: states.append(a[0] if a else k["hidden_states"]),
                                                 with_kwargs=True)]
    hooks += [layer.register_forward_hook(lambda m, a, o: states.append(o[0] if isinstance(o, tuple) else o))
              for layer in layers]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return [s.reshape(-1, 32) for s in states]


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_the_scores_are_the_papers_formulas_over_every_token(kind):
    model, x = tiny(kind), ids()
    states = by_hand(model, x)
    assert len(states) == 5
    with torch.no_grad():  # transformers' hidden states are the layers' inputs (its last one may be normed)
        given = model.lm(input_ids=x, output_hidden_states=True, use_cache=False).hidden_states
    for mine, theirs in zip(states[:4], given[:4]):
        torch.testing.assert_close(mine, theirs.reshape(-1, 32))
    cos = [torch.nn.functional.cosine_similarity(states[i], states[i + 1], dim=-1) for i in range(4)]
    bi = torch.stack([1 - c.mean() for c in cos])
    batches = [hidden_states(model, b) for b in x.split(4)]
    torch.testing.assert_close(block_influence(batches), bi)
    two = torch.stack([torch.arccos(torch.nn.functional.cosine_similarity(states[i], states[i + 2], dim=-1)
                                    .clamp(-1, 1)).mean() / torch.pi for i in range(3)])
    torch.testing.assert_close(angular_distances(batches, 2), two)


def constructed() -> tuple[nn.Module, torch.Tensor]:
    """A tiny LLaMA whose layers 1 and 2 barely change their input (their output projections scaled down)."""
    model = tiny("llama")
    with torch.no_grad():
        for i in (1, 2):
            layer = decoder(model).layers[i]
            layer.self_attn.o_proj.weight.mul_(1e-3)
            layer.mlp.down_proj.weight.mul_(1e-3)
    return model, ids()


@pytest.mark.parametrize("importance", ["block_influence", "angular"])
def test_the_layers_that_change_their_input_least_are_removed(importance):
    model, x = constructed()
    p = pruner(importance)
    p.parameters(model)
    with pytest.warns(UserWarning, match="0.5"):
        assert p.prune(model, {}, 0.45, ctx_of(x)) == {}
    assert p.removal() == {"removed": [1, 2]}


def test_the_pruned_model_runs_the_kept_layers_and_counts_their_parameters():
    model, x = constructed()
    dense = copy.deepcopy(model)
    per_layer = sum(p.numel() for p in decoder(dense).layers[0].parameters())
    total = sum(p.numel() for p in dense.parameters())
    p = pruner("block_influence")
    p.prune(model, {}, 0.5, ctx_of(x))
    assert sum(p.numel() for p in model.parameters()) == total - 2 * per_layer
    layers = decoder(model).layers
    assert len(layers) == 2 and model.lm.config.num_hidden_layers == 2
    assert [layer.self_attn.layer_idx for layer in layers] == [0, 1]
    kept = decoder(dense).layers
    dense.lm.model.layers = nn.ModuleList([kept[0], kept[3]])  # the dense model's layers 0 and 3 alone
    with torch.no_grad():
        torch.testing.assert_close(model(x), dense(x))
    linears = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, nn.Linear) and ".layers." in n}
    assert set(p.weights(model)) == linears and len(linears) == 2 * 7


def test_random_draws_with_the_generator_and_targets_count_dense_layers_over_stages():
    model, x = tiny("llama"), ids()
    p = pruner("random")
    p.prune(model, {}, 0.25, ctx_of(x))
    first = p.removal()["removed"]
    p.prune(model, {}, 0.5, ctx_of(x))
    removed = p.removal()["removed"]
    assert len(first) == 1 and len(removed) == 2 and set(first) <= set(removed)
    fresh = tiny("llama")
    q = pruner("random")
    q.replay(fresh, p.removal(), x)
    assert fresh.state_dict().keys() == model.state_dict().keys()
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), model(x))


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_replay_and_save_pretrained_give_the_same_logits(kind, tmp_path):
    model, x = tiny(kind), ids()
    p = pruner("block_influence")
    p.prune(model, {}, 0.25, ctx_of(x))
    fresh = tiny(kind)
    pruner("block_influence").replay(fresh, p.removal(), x)
    assert fresh.state_dict().keys() == model.state_dict().keys()
    save_pretrained(model, tmp_path / "saved")
    from transformers import AutoModelForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(str(tmp_path / "saved"), dtype=torch.float32).eval()
    reloaded = causal_lm(path=str(tmp_path / "saved")).eval()
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), model(x))
        torch.testing.assert_close(loaded(input_ids=x, use_cache=False).logits, model(x))
        torch.testing.assert_close(reloaded(x), model(x))


def test_a_cnn_and_a_target_removing_every_layer_are_refused():
    with pytest.raises(ConfigError, match="pruning=l1_filter"):
        pruner("block_influence").parameters(DigitsCNN((1, 8, 8), 10))
    model = tiny("llama")
    with pytest.raises(ConfigError, match="schedule.targets.*all 4 decoder layers"):
        pruner("random").prune(model, {}, 0.9, ctx_of(ids()))
