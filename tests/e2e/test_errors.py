"""One mistake of each class through the command: one line naming the setting and the fix, exit 2, no
traceback, before training, and before the run's folder in the store or its W&B run exist
(tests/unit/test_config_errors.py covers each class in breadth); every bad input of the language-model task
through the job the command runs."""

from pathlib import Path

import pytest
import torch

from prunelab.errors import ConfigError
from prunelab.models import LeNet5
from prunelab.paths import RunPaths
from prunelab.runs.folder import write_status
from prunelab.runs.job import execute
from tests.helpers import LM, MICRO, TINY, cli, compose_config, text_corpus, text_options, tiny_llama


def nothing(tmp_path) -> list[str]:
    return []


def truncated_dense(tmp_path) -> list[str]:
    path = tmp_path / "dense.pt"
    torch.save(LeNet5([1, 28, 28], 10).state_dict(), path)
    path.write_bytes(path.read_bytes()[:300])
    return [f"dense_checkpoint={path}"]


def store_under_a_file(tmp_path) -> list[str]:
    (tmp_path / "a_file").write_text("")
    return [f"store_dir={tmp_path / 'a_file' / 'store'}"]


@pytest.mark.parametrize("args, given, setting, says", [
    pytest.param(["trainer.accelerator=tpuu"], nothing, "trainer.accelerator", "rejected by Lightning",
                 marks=pytest.mark.slow),
    pytest.param(["+metrics.latency_batches=2"], nothing, "metrics.latency_batches", "is not a setting of",
                 marks=pytest.mark.slow),  # each case starts the command: ~9 s
    ([], truncated_dense, "dense_checkpoint", "is damaged"),
    pytest.param([], store_under_a_file, "store_dir", "cannot write", marks=pytest.mark.slow),
], ids=["lightning_rejects", "nothing_reads", "damaged_file", "store_unwritable"])
def test_each_class_of_mistake_gets_one_line_and_exit_2_before_training(args, given, setting, says, tmp_path):
    proc = cli(*MICRO, *args, *given(tmp_path), f"hydra.run.dir={tmp_path / 'job'}", cwd=tmp_path,
               store=tmp_path / "store")
    _, err = proc.communicate(timeout=600)
    lines = [line for line in err.splitlines() if line.startswith("prunelab: error: ")]
    assert proc.returncode == 2 and len(lines) == 1, err[-2000:]
    assert setting in lines[0] and says in lines[0] and "Fix:" in lines[0] and "Traceback" not in err
    assert not list(tmp_path.rglob("*.ckpt")) and not list(tmp_path.rglob("results.csv"))


def missing_mnist(tmp_path, monkeypatch) -> list[str]:
    """MNIST from a folder that does not exist, every download refused (a proxy nothing listens on): no network used."""
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")
    for exempt in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(exempt, raising=False)
    return ["dataset=mnist", f"dataset.data_dir={tmp_path / 'nowhere'}"]


def negative_lr(tmp_path, monkeypatch) -> list[str]:
    return ["optimizer.lr=-0.1"]


def unknown_precision(tmp_path, monkeypatch) -> list[str]:
    return ["trainer.precision=float7"]


@pytest.mark.parametrize("given, setting, says", [
    (missing_mnist, "dataset.download", "downloading MNIST into"),
    (negative_lr, "optimizer.lr", "Invalid learning rate: -0.1"),
    pytest.param(unknown_precision, "trainer.precision", "'float7' is not one of", marks=pytest.mark.slow),
], ids=["mnist_missing", "negative_lr", "unknown_precision"])
def test_a_bad_setting_is_one_line_before_any_run_folder_or_wandb_run_exists(given, setting, says, tmp_path,
                                                                            monkeypatch):
    args = given(tmp_path, monkeypatch)
    proc = cli("logger=wandb", *args, f"hydra.run.dir={tmp_path / 'job'}", cwd=tmp_path, store=tmp_path / "store")
    out, err = proc.communicate(timeout=600)
    lines = (out + err).splitlines()
    assert proc.returncode == 2 and len(lines) == 1, out + err[-3000:]
    assert lines[0].startswith(f"prunelab: error: {setting}: ") and says in lines[0] and "Fix: " in lines[0]
    assert not (tmp_path / "store").exists() and not list(tmp_path.rglob("offline-run-*"))


def damaged_results(folder: Path) -> str:
    results = folder / "results.csv"
    results.write_text(results.read_text()[:40] + '"\n')  # cut mid-row, with an open quote
    return f"{results} is damaged"


def damaged_checkpoint(folder: Path) -> str:
    """An unfinished run (status running) whose last checkpoint was cut short."""
    write_status(RunPaths(folder), {"status": "running"})
    last = RunPaths(folder).last_checkpoint
    last.parent.mkdir(exist_ok=True)
    torch.save({"state_dict": LeNet5([1, 28, 28], 10).state_dict()}, last)
    last.write_bytes(last.read_bytes()[:1000])
    return f"{last} is damaged"


@pytest.mark.slow  # a run, then the command: ~15 s
@pytest.mark.parametrize("damage, fix", [(damaged_results, "rerun=true"), (damaged_checkpoint, "to restart the run")],
                         ids=["results", "checkpoint"])
def test_a_run_folder_with_a_damaged_file_names_it_and_how_to_recover(damage, fix, tmp_path):
    config = [*MICRO, f"store_dir={tmp_path / 'store'}"]
    execute(compose_config(*config), tmp_path / "first")
    (folder,) = (tmp_path / "store" / "runs").glob("*")
    says = damage(folder)
    proc = cli(*config, f"hydra.run.dir={tmp_path / 'again'}", cwd=tmp_path)
    _, err = proc.communicate(timeout=600)
    lines = [line for line in err.splitlines() if line.startswith("prunelab: error: ")]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert says in lines[0] and "Fix: delete" in lines[0] and fix in lines[0], lines[0]


def saved_llama(tmp_path, vocab_size: int = 256) -> str:
    folder = tmp_path / "saved"
    tiny_llama(vocab_size=vocab_size).lm.save_pretrained(folder)
    return str(folder)


def empty_val_file(tmp_path) -> list[str]:
    (tmp_path / "corpus" / "empty.txt").write_text("")
    return ["dataset.val_file=empty.txt"]


def folder_without_config(tmp_path) -> list[str]:
    (tmp_path / "no_config").mkdir()
    return ["model=causal_lm", f"model.path={tmp_path / 'no_config'}"]


LM_MISTAKES = {  # each bad input of the language-model task: what is given, the setting named, what it says
    "tokenizer_too_big": (lambda d: ["model=causal_lm", f"model.path={saved_llama(d, vocab_size=128)}"],
                          "dataset.tokenizer", "does not fit the model's 128 embeddings"),
    "seq_len_beyond_positions": (lambda d: ["model.config.max_position_embeddings=16"], "dataset.seq_len",
                                 "beyond the model's 16 positions"),
    "missing_text_file": (lambda d: ["dataset.test_file=missing.txt"], "dataset.test_file", "no text file at"),
    "empty_text_file": (empty_val_file, "dataset.val_file", "is empty"),
    "folder_without_config": (folder_without_config, "model.path", "holds no config.json"),
    "hub_name_without_download": (lambda d: ["model=causal_lm", "model.path=meta-llama/Llama-2-7b-hf"],
                                  "model.download", "would be downloaded"),
    "structural_method": (lambda d: ["pruning=l1_filter"], "pruning", "the channel methods prune CNNs"),
    "width_leaves_no_head": (lambda d: ["pruning=lm_width_l2", "schedule.targets=[0.5,0.9]"], "schedule.targets",
                             "0.9 leaves no attention head group in a decoder layer of 4"),
    "width_unknown_family": (lambda d: ["pruning=lm_width_taylor", "model.config.model_type=opt",
                                        "+model.config.ffn_dim=64", "+model.config.word_embed_proj_dim=32"],
                             "model", "width pruning does not know the layers of a opt model"),
    "lora_targets_match_nothing": (lambda d: ["recovery=lora", "recovery.target_modules=[q_proj,query]"],
                                   "recovery.target_modules", "['query'] match no Linear layer of the model"),
    "depth_removes_every_layer": (lambda d: ["pruning=lm_depth_bi", "schedule.targets=[0.8]"], "schedule.targets",
                                  "would remove all 2 decoder layers"),
}


@pytest.mark.parametrize("case", sorted(LM_MISTAKES))
def test_each_bad_input_of_a_language_model_run_is_one_error_before_any_run_folder_or_wandb_run(case, tmp_path):
    given, setting, says = LM_MISTAKES[case]
    corpus = text_options(text_corpus(tmp_path / "corpus"), tmp_path / "cache")
    cfg = compose_config(*TINY[:-3], *LM, *corpus, "dataset.limit=24", "logger=wandb", f"store_dir={tmp_path / 'store'}",
                         *given(tmp_path))
    with pytest.raises(ConfigError) as err:
        execute(cfg, tmp_path / "job")  # the job the command runs
    assert err.value.setting == setting and says in err.value.problem and err.value.fix, str(err.value)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "store").exists() and not list(tmp_path.rglob("offline-run-*"))
    assert not list(tmp_path.rglob("*.ckpt")) and not list(tmp_path.rglob("results.csv"))


@pytest.mark.slow  # starts the command: ~10 s
def test_a_bad_input_of_a_language_model_run_is_one_line_and_exit_2_through_the_command(tmp_path):
    corpus = text_options(text_corpus(tmp_path / "corpus"), tmp_path / "cache")
    proc = cli(*TINY[:-3], *LM, *corpus, "logger=wandb", "model.config.max_position_embeddings=16",
               f"hydra.run.dir={tmp_path / 'job'}", cwd=tmp_path, store=tmp_path / "store")
    out, err = proc.communicate(timeout=600)
    lines = (out + err).splitlines()
    assert proc.returncode == 2 and len(lines) == 1, out + err[-3000:]
    assert lines[0].startswith("prunelab: error: dataset.seq_len: 32 tokens is beyond the model's 16 positions")
    assert "Fix: set dataset.seq_len=16 or less" in lines[0]
    assert not (tmp_path / "store").exists() and not list(tmp_path.rglob("offline-run-*"))
