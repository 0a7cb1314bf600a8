"""Width pruning of causal LMs: removal equal to zeroing what the removed units contribute, the L2 and Taylor
importances as computed by hand from the projections' slices, the parameter arithmetic of a target, saving
and loading through transformers, replay on a fresh dense model, and the refusals."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModelForCausalLM

from prunelab.errors import ConfigError
from prunelab.models import causal_lm, width
from prunelab.models.causal_lm import save_pretrained
from prunelab.models.decoder import decoder
from prunelab.models.digits import DigitsCNN
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.width import WidthPruner, global_choice, uniform_plan

VOCAB, LENGTH, HIDDEN, HEAD = 64, 12, 32, 8
SIZES = {  # LLaMA with grouped-query attention (2 query heads per key-value head); GPT-2 with its fused qkv
    "llama": {"model_type": "llama", "hidden_size": HIDDEN, "intermediate_size": 64, "num_hidden_layers": 3,
              "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": LENGTH},
    "gpt2": {"model_type": "gpt2", "n_embd": HIDDEN, "n_inner": 64, "n_layer": 3, "n_head": 4,
             "n_positions": LENGTH, "bos_token_id": 0, "eos_token_id": 0},
}
# One unit's parameters, by hand. LLaMA, a key-value group: 2 query heads (q rows, o columns: 2 * 8 * 32 each)
# and one key and one value head (8 * 32 each). GPT-2, a head: q, k, v rows with their biases (3 * (8 * 32 + 8))
# and c_proj's columns (8 * 32). An MLP channel: LLaMA's gate and up rows and down column (3 * 32); GPT-2's
# c_fc row and bias and c_proj column (2 * 32 + 1).
COST = {"llama": {"attention": 2 * 512 + 2 * 256, "mlp": 96}, "gpt2": {"attention": 3 * 264 + 256, "mlp": 65}}


def tiny(kind: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return causal_lm(config={"vocab_size": VOCAB, **SIZES[kind]}).eval()


def ids(n: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (n, LENGTH), generator=torch.Generator().manual_seed(seed))


def lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))


def ctx_of(data: torch.Tensor, seed: int = 0) -> ScoreContext:
    return ScoreContext(batches=lambda: ((b[:, :-1], b[:, 1:]) for b in data.split(3)), loss=lm_loss,
                        generator=torch.Generator().manual_seed(seed))


def outputs(kind: str, layer: nn.Module) -> dict[str, tuple[nn.Linear, int]]:
    """The projection that writes each kind's units back to the residual stream, and the columns of one unit."""
    if kind == "gpt2":
        return {"attention": (layer.attn.c_proj, HEAD), "mlp": (layer.mlp.c_proj, 1)}
    return {"attention": (layer.self_attn.o_proj, 2 * HEAD), "mlp": (layer.mlp.down_proj, 1)}


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("kind", SIZES)
def test_removing_units_equals_zeroing_what_they_write_and_takes_their_parameters(kind):
    model, masked = tiny(kind), tiny(kind)
    gone = {"attention": [1], "mlp": [0, 5, 63]}
    for layer in decoder(masked).layers:
        for k, (proj, per) in outputs(kind, layer).items():
            with torch.no_grad():
                for u in gone[k]:
                    proj.weight[:, u * per:(u + 1) * per] = 0
    keep = {"attention": [0] if kind == "llama" else [0, 2, 3], "mlp": [i for i in range(64) if i not in gone["mlp"]]}
    before = params(model)
    for layer in decoder(model).layers:
        width.shrink(layer, width.family(model.lm), HEAD, keep)
    assert before - params(model) == 3 * (COST[kind]["attention"] + 3 * COST[kind]["mlp"])
    assert torch.allclose(model(ids()), masked(ids()), atol=1e-5)


@pytest.mark.parametrize("kind", SIZES)
def test_unit_parameters_are_counted_by_hand(kind):
    layer = decoder(tiny(kind)).layers[0]
    assert width.unit_parameters(layer, kind, HEAD) == COST[kind]


def llama_groups_by_hand(layer) -> list[list[torch.Tensor]]:
    """Each key-value group's weights in LLaMA's layer: its query heads' q rows and o columns, its k and v rows."""
    a = layer.self_attn
    return [[a.q_proj.weight[16 * j:16 * (j + 1)], a.k_proj.weight[8 * j:8 * (j + 1)], a.v_proj.weight[8 * j:8 * (j + 1)],
             a.o_proj.weight[:, 16 * j:16 * (j + 1)]] for j in range(2)]


def test_l2_importance_is_the_norm_of_each_group_and_channel():
    model = tiny("llama")
    scores = WidthPruner("l2")._scores(model, ctx_of(ids()))
    layer = decoder(model).layers[1]
    heads = torch.stack([torch.cat([t.flatten() for t in g]).norm() for g in llama_groups_by_hand(layer)])
    m = layer.mlp
    channels = torch.cat([m.gate_proj.weight, m.up_proj.weight, m.down_proj.weight.T], 1).norm(dim=1)
    assert torch.allclose(scores[1]["attention"], heads.detach())
    assert torch.allclose(scores[1]["mlp"], channels.detach())


def test_taylor_importance_sums_w_times_the_summed_gradient_over_each_unit():
    model, data = tiny("llama"), ids()
    scores = WidthPruner("taylor", num_batches=2)._scores(model, ctx_of(data))
    model.zero_grad()
    for b in data.split(3):  # LLM-Pruner: the gradient of the loss of all calibration batches
        lm_loss(model(b[:, :-1]), b[:, 1:]).backward()
    layer = decoder(model).layers[0]
    a, m = layer.self_attn, layer.mlp
    saliency = {p: (p * p.grad).abs() for p in (a.q_proj.weight, a.k_proj.weight, a.v_proj.weight, a.o_proj.weight,
                                                 m.gate_proj.weight, m.up_proj.weight, m.down_proj.weight)}
    heads = [saliency[a.q_proj.weight][16 * j:16 * (j + 1)].sum() + saliency[a.k_proj.weight][8 * j:8 * (j + 1)].sum()
             + saliency[a.v_proj.weight][8 * j:8 * (j + 1)].sum() + saliency[a.o_proj.weight][:, 16 * j:16 * (j + 1)].sum()
             for j in range(2)]
    channels = saliency[m.gate_proj.weight].sum(1) + saliency[m.up_proj.weight].sum(1) + saliency[m.down_proj.weight].sum(0)
    assert torch.allclose(scores[0]["attention"], torch.stack(heads).detach(), rtol=1e-4)
    assert torch.allclose(scores[0]["mlp"], channels.detach(), rtol=1e-4)


def test_gpt2_head_scores_read_q_k_and_v_from_the_fused_projection():
    model = tiny("gpt2")
    scores = WidthPruner("l2")._scores(model, ctx_of(ids()))
    a = decoder(model).layers[2].attn
    w, b = a.c_attn.weight, a.c_attn.bias  # Linear (3 * 32, 32): q rows, then k rows, then v rows
    heads = [torch.cat([w[s * 32 + 8 * h:s * 32 + 8 * (h + 1)].flatten() for s in range(3)]
                       + [b[s * 32 + 8 * h:s * 32 + 8 * (h + 1)] for s in range(3)]
                       + [a.c_proj.weight[:, 8 * h:8 * (h + 1)].flatten()]).norm() for h in range(4)]
    assert torch.allclose(scores[2]["attention"], torch.stack(heads).detach())


def test_a_uniform_target_takes_round_target_groups_and_the_channels_that_make_up_the_parameters():
    # A LLaMA layer of 9280 parameters; at 0.5: 1 of 2 groups (1536), then round((4640 - 1536) / 96) = 32 channels.
    dense, cost = [{"attention": 2, "mlp": 64}], [COST["llama"]]
    assert uniform_plan(dense, cost, [9280], 0.5) == [{"attention": 1, "mlp": 32}]
    assert uniform_plan(dense, cost, [9280], 0.2) == [{"attention": 0, "mlp": 19}]  # round(1856 / 96)
    with pytest.raises(ConfigError, match="leaves no attention head group"):
        uniform_plan(dense, cost, [9280], 0.8)


def test_global_choice_takes_the_lowest_scores_over_layers_and_keeps_one_unit_of_each_kind():
    scores = [{"attention": torch.tensor([0.1, 0.2]), "mlp": torch.tensor([5.0, 0.3, 0.4])},
              {"attention": torch.tensor([0.9, 0.8]), "mlp": torch.tensor([0.1, 0.2, 9.0])}]
    cost = [{"attention": 10, "mlp": 1}] * 2
    chosen = global_choice(scores, cost, {"attention": 2, "mlp": 23}, {"attention": 0, "mlp": 0})
    # groups: 0.1 then 0.2 would empty layer 0, so 0.8 of layer 1; channels: 3 parameters left, the 3 lowest
    assert chosen == [{"attention": [0], "mlp": [1]}, {"attention": [1], "mlp": [0, 1]}]


@pytest.mark.parametrize("scope", ["uniform", "global"])
@pytest.mark.parametrize("kind", SIZES)
def test_pruned_models_save_and_load_through_transformers_with_the_same_logits(kind, scope, tmp_path):
    model = tiny(kind)
    pruner = WidthPruner("l2", scope)
    pruner.parameters(model)
    pruner.prune(model, {}, 0.5, ctx_of(ids()))
    save_pretrained(model, tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert torch.allclose(loaded(input_ids=ids()).logits, model(ids()), atol=1e-5)
    assert torch.allclose(causal_lm(path=str(tmp_path)).eval()(ids()), model(ids()), atol=1e-5)
    assert loaded.config.model_type == ("llama" if (kind, scope) == ("llama", "uniform") else f"prunelab_{kind}")
    if loaded.config.model_type == "llama":  # plain LLaMA fields: loadable without prunelab
        assert (loaded.config.num_attention_heads, loaded.config.num_key_value_heads) == (2, 1)


@pytest.mark.parametrize("kind", SIZES)
def test_two_stages_reach_each_target_and_replay_rebuilds_the_pruned_model(kind):
    model, fresh = tiny(kind), tiny(kind)
    pruner = WidthPruner("taylor", "global", num_batches=2)
    pruner.parameters(model)
    layer_params = sum(params(layer) for layer in decoder(model).layers)
    dense = params(model)
    for target in (0.2, 0.5):
        pruner.prune(model, {}, target, ctx_of(ids()))
        removed = (dense - params(model)) / layer_params
        assert abs(removed - target) <= COST[kind]["mlp"] / layer_params / 2 + 1e-9
    WidthPruner("taylor").replay(fresh, pruner.removal(), None)
    assert torch.allclose(fresh(ids()), model(ids()), atol=1e-6)


def test_rounding_by_key_value_groups_warns_with_the_ratio_attained():
    model = tiny("llama")
    pruner = WidthPruner("random")
    pruner.parameters(model)
    with pytest.warns(UserWarning, match="a ratio of 0 of the head groups, not 0.2"):
        pruner.prune(model, {}, 0.2, ctx_of(ids()))


def test_refusals_name_the_setting():
    with pytest.raises(ConfigError, match="leaves no attention head group"):
        WidthPruner("l2").check(tiny("llama"), [0.3, 0.8])
    with pytest.raises(ConfigError, match="is not one"):
        WidthPruner("l2").parameters(DigitsCNN((1, 8, 8), 10))
    torch.manual_seed(0)
    opt = causal_lm(config={"model_type": "opt", "vocab_size": VOCAB, "hidden_size": 16, "ffn_dim": 32,
                            "num_hidden_layers": 1, "num_attention_heads": 2, "word_embed_proj_dim": 16})
    with pytest.raises(ConfigError, match="width pruning does not know the layers of a opt model"):
        WidthPruner("l2").parameters(opt)
    for key, value in (("importance", "fisher"), ("scope", "layer")):
        with pytest.raises(ConfigError, match=f"pruning.{key}"):
            WidthPruner(**{key: value})
