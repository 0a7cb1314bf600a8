"""Tiny LLaMA and GPT-2 models trained, width-pruned by every width option and fine-tuned; the final model
saved in transformers' layout loads back with the pruned sizes."""

import pandas as pd
import pytest
import torch
from transformers import AutoModelForCausalLM

from prunelab import results as R
from prunelab.models import width
from tests.helpers import LM, LM_DATA, TINY, cli, compose_config, options, run, text_corpus, text_options

# At target 0.25, uniform, per decoder layer (hidden 32, 4 heads of 8, 64 MLP channels), by hand:
# llama_tiny: 10304 parameters; 1 head (q, k, v rows, o columns: 4 * 256) and round((2576 - 1024) / 96) = 16
# channels (gate, up rows, down column: 96 each). gpt2_tiny: 8544; 1 head (3 * 264 + 256 = 1048) and
# round((2136 - 1048) / 65) = 17 channels (c_fc row and bias, c_proj column: 65 each).
REMOVED = {"llama_tiny": 2 * (1024 + 16 * 96), "gpt2_tiny": 2 * (1048 + 17 * 65)}
WIDTH = ["schedule=oneshot", "schedule.targets=[0.25]", "pruning.num_batches=2"]


@pytest.mark.parametrize("model", REMOVED)
@pytest.mark.parametrize("method", [m for m in options("pruning") if m.startswith("lm_width_")])
def test_each_width_option_removes_heads_and_channels_of_a_tiny_lm(method, model, tmp_path):
    corpus = text_options(text_corpus(tmp_path / "corpus"), tmp_path / "cache")
    cfg = compose_config(*TINY, *LM_DATA, f"model={model}", *corpus, f"pruning={method}", *WIDTH, "save_model=true")
    out = run(cfg, tmp_path / "run")
    rows = out.results
    assert len(rows) == 2 and rows["family"].eq("structural").all()
    assert rows[R.PARAMS].iloc[0] - rows[R.PARAMS].iloc[1] == REMOVED[model]
    assert rows[R.test("ppl")].gt(1).all() and out.masks == {}
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "model_final_hf").eval()
    ids = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(0))
    model_ = out.module.model.eval()
    assert torch.allclose(loaded(input_ids=ids).logits, model_(ids), atol=1e-5)
    assert sum(p.numel() for p in loaded.parameters()) == sum(p.numel() for p in model_.parameters())


@pytest.mark.slow  # starts the command: the slow suite (pytest -m slow) runs it
def test_the_command_width_prunes_a_tiny_llama_globally(tmp_path):
    corpus = text_options(text_corpus(tmp_path / "corpus"), tmp_path / "cache")
    sweep = tmp_path / "sweep"
    proc = cli("-m", *TINY, *LM, *corpus, "pruning=lm_width_taylor", "pruning.scope=global", *WIDTH,
               "dataset.limit=48", "save_model=true", f"hydra.sweep.dir={sweep}", cwd=tmp_path, store=tmp_path / "store")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    folder = next(sweep.glob("0_*"))
    rows = pd.read_csv(folder / "results.csv")
    removed = rows[R.PARAMS].iloc[0] - rows[R.PARAMS].iloc[1]
    assert abs(removed - 0.25 * 2 * 10304) <= 96 / 2
    saved = next((tmp_path / "store" / "runs").glob("*/model_final_hf"))
    width.register()  # per-layer widths: a prunelab_llama config, which transformers loads once registered
    assert AutoModelForCausalLM.from_pretrained(saved).config.model_type == "prunelab_llama"  # per-layer widths
