"""LoRA recovery: only the adapters train, the merge is W + alpha / rank * B A, the plain layers come back, and
target modules that match nothing are refused."""

import pytest
import torch
from torch import nn

from prunelab.errors import ConfigError
from prunelab.models.decoder import decoder
from prunelab.training.recovery import LoRA
from tests.helpers import tiny_llama


def test_only_the_adapters_train_and_the_merge_adds_alpha_over_rank_times_b_a():
    model = tiny_llama()
    q = decoder(model).layers[0].self_attn.q_proj
    before = q.weight.detach().clone()
    lora = LoRA(rank=4, alpha=8.0, dropout=0.0)
    lora.attach(model)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert len(trainable) == 2 * 7 * 2  # A and B on 7 projections in each of 2 layers
    adapted = decoder(model).layers[0].self_attn.q_proj
    with torch.no_grad():
        adapted.lora_B["default"].weight.normal_()  # B starts at zero: give it a value to merge
    a, b = adapted.lora_A["default"].weight.detach().clone(), adapted.lora_B["default"].weight.detach().clone()
    lora.merge(model)
    merged = decoder(model).layers[0].self_attn.q_proj
    assert type(merged) is nn.Linear and merged is q
    assert torch.allclose(merged.weight, before + 8.0 / 4 * b @ a, atol=1e-6)
    assert all(p.requires_grad for p in model.parameters()) and not any("lora" in n for n, _ in model.named_parameters())


def test_target_modules_are_matched_by_their_last_names_and_a_name_that_matches_nothing_is_refused():
    model = tiny_llama()
    LoRA(target_modules=["q_proj", "v_proj"]).attach(model)
    adapted = [n for n, _ in model.named_parameters() if "lora_A" in n]
    assert len(adapted) == 4 and all(".q_proj." in n or ".v_proj." in n for n in adapted)
    with pytest.raises(ConfigError, match=r"\['query'\] match no Linear layer of the model") as err:
        LoRA(target_modules=["q_proj", "query"]).check(tiny_llama(), gradual=False)
    assert err.value.setting == "recovery.target_modules" and "q_proj" in err.value.fix
    with pytest.raises(ConfigError, match="prunes during stages"):
        LoRA().check(tiny_llama(), gradual=True)
    with pytest.raises(ConfigError, match="recovery.rank"):
        LoRA(rank=0)
