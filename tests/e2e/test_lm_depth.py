"""A tiny 4-layer LLaMA (and GPT-2) trained, depth-pruned by every depth option (one decoder layer of four) and
fine-tuned."""

import pandas as pd
import pytest

from prunelab import results as R
from prunelab.models.decoder import decoder
from tests.helpers import LM, LM_DATA, TINY, cli, compose_config, options, run, text_corpus, text_options

LAYER = 4 * 32 * 32 + 3 * 32 * 64 + 2 * 32  # a llama_tiny decoder layer: attention, MLP, two RMSNorms
# A gpt2_tiny decoder layer: fused qkv and output projections, c_fc and c_proj, with biases; two LayerNorms.
GPT2_LAYER = (32 * 96 + 96) + (32 * 32 + 32) + (32 * 64 + 64) + (64 * 32 + 32) + 2 * 2 * 32


SHAPE = ["model.config.num_hidden_layers=4", "schedule=oneshot", "schedule.targets=[0.25]",
         "pruning.calibration.num_samples=16"]
DEPTH = ["pruning=lm_depth_bi", *SHAPE]


@pytest.mark.parametrize("method", [m for m in options("pruning") if m.startswith("lm_depth_")])
def test_each_depth_option_removes_one_of_four_layers_of_a_tiny_llama(method, tmp_path):
    corpus = text_options(text_corpus(tmp_path / "corpus"), tmp_path / "cache")
    cfg = compose_config(*TINY, *LM, *corpus, f"pruning={method}", *SHAPE)
    out = run(cfg, tmp_path / "run")
    rows = out.results
    assert len(rows) == 2 and rows["family"].eq("structural").all()
    assert rows[R.PARAMS].iloc[0] - rows[R.PARAMS].iloc[1] == LAYER
    assert len(decoder(out.module.model).layers) == 3 and out.masks == {}
    assert rows[R.test("ppl")].gt(1).all()


def test_block_influence_removes_one_of_four_layers_of_a_tiny_gpt2(tmp_path):
    corpus = text_options(text_corpus(tmp_path / "corpus"), tmp_path / "cache")
    cfg = compose_config(*TINY, *LM_DATA, "model=gpt2_tiny", "model.config.n_layer=4", *corpus, *DEPTH[:1],
                         *SHAPE[1:])
    out = run(cfg, tmp_path / "run")
    rows = out.results
    assert rows[R.PARAMS].iloc[0] - rows[R.PARAMS].iloc[1] == GPT2_LAYER
    assert len(decoder(out.module.model).layers) == 3 and rows[R.test("ppl")].gt(1).all()


@pytest.mark.slow  # starts the command: the slow suite (pytest -m slow) runs it
def test_the_command_depth_prunes_a_tiny_llama(tmp_path):
    corpus = text_options(text_corpus(tmp_path / "corpus"), tmp_path / "cache")
    sweep = tmp_path / "sweep"
    proc = cli("-m", *TINY, *LM, *corpus, *DEPTH, "dataset.limit=48", f"hydra.sweep.dir={sweep}",
               cwd=tmp_path, store=tmp_path / "store")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    rows = pd.read_csv(next(sweep.glob("0_*")) / "results.csv")
    assert rows[R.PARAMS].iloc[0] - rows[R.PARAMS].iloc[1] == LAYER
