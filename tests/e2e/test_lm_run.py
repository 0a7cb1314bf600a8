"""A tiny LLaMA trained, pruned by magnitude and fine-tuned with its masks held, through the run and the command:
the perplexity curve in results.csv, W&B (offline) and the comparison."""

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from prunelab import results as R
from prunelab.analysis import compare, gather
from prunelab.paths import ComparisonPaths, RunPaths
from prunelab.training.export import load_model
from tests.helpers import LM, TINY, cli, compose_config, run, text_corpus, text_options, wandb_run_dirs, wandb_run_file

PPL = (R.before_ft("ppl"), R.val("ppl"), R.test("ppl"))


@pytest.fixture
def corpus(tmp_path):
    return text_options(text_corpus(tmp_path / "corpus"), tmp_path / "cache")


@pytest.mark.parametrize("scope", ["global", "layer", "row"])
def test_magnitude_prunes_the_decoder_linears_and_fine_tuning_holds_the_masks(scope, corpus, tmp_path):
    out = run(compose_config(*TINY, *LM, *corpus, "pruning=magnitude", f"pruning.scope={scope}"), tmp_path / "run")
    rows = out.results
    assert rows[R.WEIGHT_SPARSITY].tolist() == pytest.approx([0.0, 0.5, 0.8], abs=1e-3)
    assert rows["task"].eq("language_modeling").all() and rows[list(PPL)].gt(1).all().all()
    assert rows[R.test("ppl")].iloc[0] < 100  # learned: a uniform guess over 256 tokens is perplexity 256
    params = dict(out.module.model.named_parameters())
    assert all(".layers." in name for name in out.masks)  # no embedding, no LM head
    for name, mask in out.masks.items():
        assert torch.all(params[name][~mask] == 0) and (params[name][mask] != 0).float().mean() > 0.99
        if scope == "layer":
            assert 1 - mask.float().mean() == pytest.approx(0.8, abs=1e-3)
        if scope == "row":
            assert torch.allclose(1 - mask.float().mean(1), torch.tensor(0.8), atol=1 / mask.shape[1])


def test_the_test_perplexity_right_after_pruning_is_measured_where_asked(corpus, tmp_path):
    # fine-tuning at a negligible learning rate leaves the pruned model as it was: its test perplexity after
    # fine-tuning is then the one right after pruning, and the validation split's differs from both
    overrides = [*TINY, *LM, *corpus, "pruning=magnitude", "schedule.finetune_lr_scale=1e-9"]
    rows = run(compose_config(*overrides, "metrics.test_before_ft=true"), tmp_path / "on").results
    right_after, after_ft = rows[R.test_before_ft("ppl")], rows[R.test("ppl")]
    assert right_after.tolist() == pytest.approx(after_ft.tolist(), rel=1e-5)
    assert right_after.iloc[-1] > right_after.iloc[0] and right_after.iloc[-1] != rows[R.before_ft("ppl")].iloc[-1]
    off = run(compose_config(*overrides), tmp_path / "off").results
    assert off[R.test_before_ft("ppl")].isna().all() and off[R.test("ppl")].tolist() == after_ft.tolist()


def test_the_perplexity_curve_goes_to_wandb_and_to_a_comparison_on_a_log_axis(corpus, tmp_path):
    cfg = compose_config(*TINY[:-3], *LM, *corpus, "logger=wandb", "save_model=state", "export_onnx=false")
    folder = tmp_path / "run"
    out = run(cfg, folder)
    rows = out.results
    logged = wandb_run_file(wandb_run_dirs(folder)[0])
    curve = [R.stage_columns(h) for h in logged["history"] if R.stage_key(R.STAGE) in h]
    assert [c[R.test("ppl")] for c in curve] == pytest.approx(rows[R.test("ppl")].tolist())
    assert logged["summary"][R.summary_key(R.final_score("ppl"))] == pytest.approx(rows[R.test("ppl")].iloc[-1])
    assert not RunPaths(folder).model_program.exists()
    final, ids = out.module.model.eval(), torch.randint(256, (2, 32))
    torch.testing.assert_close(load_model(RunPaths(folder).model_state).eval()(ids), final(ids))
    RunPaths(folder).hydra_config.parent.mkdir()
    OmegaConf.save(cfg, RunPaths(folder).hydra_config)  # what Hydra leaves in a job's folder
    comparison = compare.compare(gather.gather([folder]))
    assert comparison.table[R.mean(R.test("ppl"))].tolist() == pytest.approx(rows[R.test("ppl")].tolist())
    assert comparison.figure.axes[0].get_yscale() == "log" and "lower is better" in comparison.markdown


@pytest.mark.slow  # starts the command: the slow suite (pytest -m slow) runs it
def test_the_command_trains_prunes_and_fine_tunes_a_tiny_llama(corpus, tmp_path):
    sweep, store = tmp_path / "sweep", tmp_path / "store"
    args = [*TINY[:-3], *LM, *corpus, "dataset.limit=48", "logger=wandb", "save_model=state",
            f"hydra.sweep.dir={sweep}"]
    proc = cli("-m", *args, "pruning=magnitude", cwd=tmp_path, store=store)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    rows = pd.read_csv(sweep / "0_magnitude_s0" / "results.csv")
    assert set(PPL) <= set(rows.columns) and R.test("acc") not in rows.columns and len(rows) == 3
    (run_dir,) = store.glob("runs/magnitude_llama_tiny_text_s0-*")
    logged = wandb_run_file(wandb_run_dirs(run_dir)[0])
    curve = [R.stage_columns(h) for h in logged["history"] if R.stage_key(R.STAGE) in h]
    assert [c[R.test("ppl")] for c in curve] == pytest.approx(rows[R.test("ppl")].tolist())
    assert "skipped, prunelab does not trace language models yet" in out + err
    comparison = pd.read_csv(ComparisonPaths(sweep).table)
    assert comparison[R.mean(R.test("ppl"))].tolist() == pytest.approx(rows[R.test("ppl")].tolist())


def test_owl_with_wanda_prunes_each_decoder_layer_at_its_own_sparsity_and_the_linears_at_the_target(corpus, tmp_path):
    out = run(compose_config(*TINY, *LM, *corpus, "pruning=wanda", "owl=owl", "pruning.calibration.num_samples=16",
                             "pruning.owl.calibration.num_samples=16"), tmp_path / "run")
    assert out.results[R.WEIGHT_SPARSITY].tolist() == pytest.approx([0.0, 0.5, 0.8], abs=1e-3)
    pruned = {layer: [1 - m.float().mean() for n, m in out.masks.items() if f".layers.{layer}." in n]
              for layer in (0, 1)}
    assert all(max(s) - min(s) < 0.01 for s in pruned.values())  # every Linear of a layer at the layer's sparsity
    assert abs(pruned[0][0] - pruned[1][0]) == pytest.approx(2 * 0.08, abs=0.01)  # two layers: 0.8 -/+ lambda


def test_taylor_prunes_a_tiny_llama_to_the_target_from_the_next_token_loss_gradient(corpus, tmp_path):
    out = run(compose_config(*TINY, *LM, *corpus, "pruning=taylor", "pruning.criterion.accumulate=gradient",
                             "pruning.criterion.num_batches=4"), tmp_path / "run")
    assert out.results[R.WEIGHT_SPARSITY].tolist() == pytest.approx([0.0, 0.5, 0.8], abs=1e-3)
    assert out.masks and all(".layers." in name for name in out.masks)  # no embedding, no LM head
    assert out.results[R.test("ppl")].iloc[0] < 100
