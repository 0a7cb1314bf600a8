"""First-order Taylor on a tiny LLaMA: |w * dL/dw| of the next-token cross-entropy against autograd by hand, in both
accumulations over the calibration batches; only the decoder layers' Linears are scored and pruned."""

import pytest
import torch

from prunelab.errors import ConfigError
from prunelab.pruning import Taylor, UnstructuredPruner
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.masks import full_masks, sparsity
from prunelab.training.losses import cross_entropy
from tests.helpers import tiny_llama


def windows(n_batches: int = 3, size: int = 4, length: int = 16, seed: int = 2) -> list:
    """Seeded (ids, next ids) batches of token windows, as dataset=text gives them."""
    ids = torch.randint(256, (n_batches * size, length + 1), generator=torch.Generator().manual_seed(seed))
    return [(w[:, :-1], w[:, 1:]) for w in ids.split(size)]


def lm_ctx(data) -> ScoreContext:
    return ScoreContext(batches=lambda: iter(data), loss=cross_entropy, generator=torch.Generator().manual_seed(0))


def hand_gradients(model, params, data) -> list[dict]:
    """dL_b/dw of each batch b's mean next-token cross-entropy, by plain backward() in eval mode."""
    model.eval()
    out = []
    for x, y in data:
        model.zero_grad()
        logits = model(x)
        torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)).backward()
        out.append({n: p.grad.clone() for n, p in params.items()})
    return out


@pytest.mark.parametrize("accumulate", ["saliency", "gradient"])
def test_taylor_on_a_causal_lm_is_abs_w_times_the_next_token_loss_gradient(accumulate):
    model, data = tiny_llama(), windows()
    params = UnstructuredPruner(Taylor()).parameters(model)
    scores = Taylor(num_batches=2, accumulate=accumulate)(model, params, lm_ctx(data))
    grads = hand_gradients(model, params, data[:2])  # the third batch is beyond num_batches
    for name, p in params.items():
        w = p.detach()
        per_batch = sum((w * g[name]).abs() for g in grads)  # sum_b |w * g_b|
        of_sum = (w * sum(g[name] for g in grads)).abs()  # |w * sum_b g_b|
        torch.testing.assert_close(scores[name], per_batch if accumulate == "saliency" else of_sum)
        assert not torch.allclose(per_batch, of_sum)  # the two accumulations differ, so the test tells them apart


def test_taylor_prunes_only_the_decoder_layers_linears_of_a_causal_lm():
    model, data = tiny_llama(), windows()
    pruner = UnstructuredPruner(Taylor(num_batches=2, accumulate="gradient"))
    params = pruner.parameters(model)
    linears = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and ".layers." in n}
    assert set(params) == linears and len(linears) == 14  # 7 per layer; not the embedding, not the LM head
    head, embedding = model.lm.lm_head.weight.detach().clone(), model.lm.get_input_embeddings().weight.detach().clone()
    masks = pruner.prune(model, full_masks(params), 0.5, lm_ctx(data))
    assert sparsity(masks) == pytest.approx(0.5, abs=1e-4)
    assert torch.equal(model.lm.lm_head.weight, head) and torch.equal(model.lm.get_input_embeddings().weight, embedding)


def test_an_unknown_accumulation_is_named():
    with pytest.raises(ConfigError, match="pruning.criterion.accumulate: unknown accumulation 'mean'"):
        Taylor(accumulate="mean")
