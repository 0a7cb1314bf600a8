"""LoRA recovery in the fine-tuning stages of a tiny LLaMA: width-pruned structure and unstructured masks kept
through the merge, the frozen weights untouched, and a run killed mid-recovery ending as the uninterrupted one."""

import pytest
import torch

from prunelab import results as R
from prunelab.training.callback import PruningCallback
from tests.helpers import (LM, TINY, Stopped, assert_same_run, compose_config, run, stop_at_epoch_start, text_corpus,
                           text_options)

# 4 epochs: 2 dense, then one stage of 2 fine-tuning epochs (epochs 2 and 3) from the dense model.
STAGES = [*TINY, *LM, "schedule=oneshot", "schedule.targets=[0.25]", "schedule.finetune_epochs=2", "cache=false"]
RECOVER = [*STAGES, "recovery=lora", "recovery.rank=4"]
WIDTH = ["pruning=lm_width_l2"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text")
    return text_options(text_corpus(folder / "corpus"), folder / "cache")


def engine_of(out):
    return next(c for c in out.module.trainer.callbacks if isinstance(c, PruningCallback)).engine


def test_lora_recovery_keeps_the_width_pruned_structure_and_trains_only_the_decoder_linears(corpus, tmp_path):
    two = ["schedule.targets=[0.2,0.35]"]  # the second stage starts from the dense model, the adapters merged away
    lora = run(compose_config(*RECOVER, *corpus, *WIDTH, *two), tmp_path / "lora")
    full = run(compose_config(*STAGES, *corpus, *WIDTH, *two), tmp_path / "full")
    assert lora.results["epoch"].tolist() == full.results["epoch"].tolist() == [2, 4, 6]  # every stage trains
    assert lora.results[R.PARAMS].tolist() == full.results[R.PARAMS].tolist()  # the same pruned sizes
    model = lora.module.model
    assert not any("lora" in n for n, _ in model.named_parameters())
    dense = engine_of(lora)._dense_model.lm  # one-shot: the dense model the stage started from
    assert torch.equal(model.lm.lm_head.weight, dense.lm_head.weight)  # frozen while the adapters trained
    assert torch.equal(model.lm.model.embed_tokens.weight, dense.model.embed_tokens.weight)
    assert (lora.results[R.test("ppl")].iloc[1:] != full.results[R.test("ppl")].iloc[1:]).all()
    before, after = (lora.results[c].iloc[1:] for c in (R.before_ft("ppl"), "val_ppl"))
    assert (after < before).all()  # the adapters recover some of what pruning lost, at each stage


def test_lora_recovery_keeps_unstructured_masks_through_the_merge(corpus, tmp_path):
    out = run(compose_config(*RECOVER, *corpus, "pruning=magnitude", "schedule.targets=[0.5]"), tmp_path / "run")
    assert out.results[R.WEIGHT_SPARSITY].iloc[-1] == pytest.approx(0.5, abs=1e-4)
    params = dict(out.module.model.named_parameters())
    assert all(not params[n][~m].any() for n, m in out.masks.items())


def test_a_run_killed_mid_recovery_ends_as_the_uninterrupted_one(corpus, tmp_path, monkeypatch):
    reference = run(compose_config(*RECOVER, *corpus, *WIDTH), tmp_path / "reference")
    stop_at_epoch_start(monkeypatch, 3)  # after the first recovery epoch's checkpoint, adapters in it
    with pytest.raises(Stopped):
        run(compose_config(*RECOVER, *corpus, *WIDTH), tmp_path / "killed")
    monkeypatch.undo()
    assert_same_run(run(compose_config(*RECOVER, *corpus, *WIDTH), tmp_path / "killed"), reference)
