"""task=language_modeling: next-token cross-entropy, perplexity as stated, compute per token, calibration windows
for pruners, and every bad input as one ConfigError before any training."""

import math

import pytest
import torch
import torch.nn.functional as F

from prunelab import tasks
from prunelab.config import build
from prunelab.errors import ConfigError
from prunelab.pruning import Magnitude, UnstructuredPruner
from prunelab.pruning.calibration import Calibration
from prunelab.pruning.criteria import ScoreContext
from prunelab.training.engine import StageEngine
from prunelab.training.losses import cross_entropy
from prunelab.training.meter import Meter
from prunelab.training.schedule import Schedule
from tests.helpers import LM, TINY, FakeHost, compose_config, drive, prepare, text_corpus, text_options, tiny_llama


@pytest.fixture
def lm_options(tmp_path):
    return [*TINY, *LM, *text_options(text_corpus(tmp_path / "corpus"), tmp_path / "cache"), "dataset.limit=24"]


def test_the_task_is_perplexity_lower_is_better_on_a_log_axis_and_the_text_dataset_selects_it():
    cfg = compose_config("dataset=text")
    task = tasks.from_config({"task": dict(cfg.task)})
    assert cfg.task.name == "language_modeling" and task.metric.name == "ppl"
    assert not task.metric.higher_is_better and task.metric.log_axis and task.metric.scale == 1
    assert task.metric.within(104.9, 100.0) and not task.metric.within(105.1, 100.0)  # relative 5%


def test_cross_entropy_is_classifications_and_per_token_for_sequences():
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(4, 10, generator=g), torch.randint(10, (4,), generator=g)
    assert torch.equal(cross_entropy(logits, labels), F.cross_entropy(logits, labels))
    seq, targets = torch.randn(2, 3, 10, generator=g), torch.randint(10, (2, 3), generator=g)
    by_token = torch.stack([F.cross_entropy(seq[i, t:t + 1], targets[i, t:t + 1]) for i in range(2) for t in range(3)])
    torch.testing.assert_close(cross_entropy(seq, targets), by_token.mean())


def test_perplexity_is_exp_of_the_mean_next_token_nll_over_the_windows(lm_options, tmp_path):
    parts = prepare(compose_config(*lm_options), tmp_path / "run")
    parts.datamodule.setup()
    module, val = parts.module, parts.datamodule.splits["val"]
    # transformers' own loss of each window of seq_len + 1 tokens: the mean NLL of its last seq_len tokens
    stream = torch.cat([val.x, val.y[:, -1:]], dim=1)
    losses = [float(module.model.lm(input_ids=w[None], labels=w[None]).loss) for w in stream]
    expected = math.exp(sum(losses) / len(losses))
    assert module.evaluate(parts.datamodule.val_dataloader())["ppl"] == pytest.approx(expected, rel=1e-5)


def test_compute_is_counted_per_token_over_the_linear_layers():
    model = tiny_llama()
    columns, costs = Meter(latency_repeats=1, latency_warmup=0).measure(model, (32,), 1, 1, None)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert columns["macs"] == sum(m.in_features * m.out_features for m in linears)  # LM head included
    assert set(costs) == {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert math.isfinite(columns["latency_ms"])


def test_activation_aware_pruners_calibrate_on_the_datas_windows(lm_options, tmp_path):
    dm = prepare(compose_config(*lm_options), tmp_path / "run").datamodule
    ctx = ScoreContext(batches=lambda: iter(()), loss=cross_entropy, generator=torch.Generator(),
                       calibration=dm.calibration_samples)
    drawn = Calibration(num_samples=6, batch_size=4, seed=3).inputs(ctx, torch.device("cpu"))
    assert [len(b) for b in drawn] == [4, 2] and torch.equal(torch.cat(drawn), dm.calibration_samples(6, 3))


def test_the_engine_gives_pruners_the_hosts_calibration():
    seen = []

    class Spy(UnstructuredPruner):
        def prune(self, model, masks, target, ctx):
            seen.append(ctx.calibration)
            return super().prune(model, masks, target, ctx)

    host = FakeHost()
    host.calibration = lambda n, seed: torch.zeros(n, 6)
    engine = StageEngine(Spy(Magnitude()), Schedule(targets=[0.5], pretrain_epochs=1, finetune_epochs=1), {"seed": 0})
    engine.start(host)
    drive(engine, host, range(2))
    assert seen == [host.calibration]


def test_a_saved_model_trains_with_the_tokenizer_saved_beside_it(lm_options, tmp_path):
    folder = _saved_llama(tmp_path / "m")
    dm = build(compose_config(*lm_options).dataset)
    dm.tokenizer().save(f"{folder}/tokenizer.json")  # a byte-level BPE of 256 tokens, as a model folder holds one
    parts = prepare(compose_config(*lm_options, "model=causal_lm", f"model.path={folder}",
                                   f"dataset.tokenizer={folder}"), tmp_path / "run")
    assert parts.datamodule.tokenizer().to_str() == dm.tokenizer().to_str()
    torch.testing.assert_close(parts.module.model.lm.lm_head.weight, tiny_llama().lm.lm_head.weight)


def _saved_llama(folder, **kwargs) -> str:
    tiny_llama(**kwargs).lm.save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("overrides, setting", [
    (lambda d: ["model=causal_lm", f"model.path={_saved_llama(d / 'm', vocab_size=128)}"], "dataset.tokenizer"),
    (lambda d: ["model=gpt2_tiny", "model.config.n_positions=16"], "dataset.seq_len"),
    (lambda d: ["dataset.test_file=missing.txt"], "dataset.test_file"),
    (lambda d: ["model=causal_lm", f"model.path={d}"], "model.path"),
    (lambda d: ["model=causal_lm", "model.path=meta-llama/Llama-2-7b-hf"], "model.download"),
    (lambda d: ["pruning=l1_filter"], "pruning"),
    (lambda d: ["model=lenet_300_100"], "model.input_shape"),  # an image model reads the image shape
    (lambda d: ["task=classification"], "task"),
])
def test_bad_input_is_one_clear_error_before_any_training(overrides, setting, lm_options, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(ConfigError) as err:
        prepare(compose_config(*lm_options, *overrides(tmp_path)), run)
    assert err.value.setting == setting and err.value.fix and "\n" not in str(err.value)
    assert not run.exists() or not any(run.iterdir())


@pytest.mark.parametrize("overrides, setting", [
    (lambda d: ["model=llama_tiny"], "model.config.vocab_size"),  # a model size reads the text's vocabulary
    (lambda d: ["model=causal_lm", f"model.path={_saved_llama(d / 'm')}"], "dataset"),
])
def test_a_classifiers_data_set_is_refused_by_the_language_modelling_task(overrides, setting, tmp_path):
    with pytest.raises(ConfigError) as err:
        prepare(compose_config(*TINY, "task=language_modeling", *overrides(tmp_path)), tmp_path / "run")
    assert err.value.setting == setting and "dataset=text" in err.value.fix


def test_a_model_built_from_the_config_is_seeded(lm_options, tmp_path):
    a, b = (build(compose_config(*lm_options).model) for _ in range(2))
    assert not torch.equal(a.lm.lm_head.weight, b.lm.lm_head.weight)  # the global seed decides, as for every model
    one = prepare(compose_config(*lm_options), tmp_path / "a").module.model
    two = prepare(compose_config(*lm_options), tmp_path / "b").module.model
    assert torch.equal(one.lm.lm_head.weight, two.lm.lm_head.weight)
