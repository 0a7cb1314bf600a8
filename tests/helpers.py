"""Shared test builders and doubles: the real config composed and shrunk, runs in a folder, fake runs and
W&B files, pruners that spy, fail or diverge. Imported by every test module; configs point at the
doubles here (`tests.helpers.<Name>`)."""

import json
import os
import random
import re
import struct
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pandas as pd
import torch
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from torch import nn

from prunelab.pruning import UnstructuredPruner
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.patterns import reduction_view
from prunelab.runs.run import Parts, RunResult
from prunelab.runs.run import prepare as prepare_spec
from prunelab.runs.run import run as run_spec
from prunelab.runs.spec import from_config
from prunelab.training.callback import PruningCallback

ROOT = Path(__file__).resolve().parents[1]
CONF = Path(str(resources.files("prunelab.conf")))
SHARED_DATA = ROOT.parent / "shared" / "data"

# A run of a few seconds: 2 dense epochs, 2 targets of 1 fine-tune epoch each.
TINY = [
    "schedule.pretrain_epochs=2",
    "schedule.finetune_epochs=1",
    "schedule.targets=[0.5,0.8]",
    "trainer.enable_progress_bar=false",
    "logger=none",
    "save_model=false",
    "export_onnx=false",
]

# Small learnable data (4 training batches of 64) for tests of how runs work rather than how well.
SMALL = ["dataset=synthetic", "dataset.num_samples=256", "dataset.num_test=64"]

# One dense epoch, one target with one fine-tuning epoch, on a small MLP: seconds per job.
MICRO = ["schedule.pretrain_epochs=1", "schedule.finetune_epochs=1", "schedule.targets=[0.5]", *SMALL,
         "model=lenet_300_100", "trainer.enable_progress_bar=false", "logger=none", "export_onnx=false"]


# Language models: windows of 32 tokens of a text corpus (`text_corpus`), vocabulary 256; a tiny LLaMA on them.
LM_TEXT = ["dataset=text", "dataset.seq_len=32", "dataset.vocab_size=256"]
LM_DATA = [*LM_TEXT, "optimizer.lr=0.2"]
LM = ["model=llama_tiny", *LM_DATA]


TIMES = ["stage_time_s", "wall_time_s", "latency_ms"]  # measured, not computed: two equal runs differ in them


def assert_same_run(a: RunResult, b: RunResult) -> None:
    """Equal rows (but for times), masks and final weights."""
    pd.testing.assert_frame_equal(a.results.drop(columns=TIMES), b.results.drop(columns=TIMES))
    assert a.masks.keys() == b.masks.keys() and all(torch.equal(a.masks[n], b.masks[n]) for n in a.masks)
    assert all(torch.equal(x, y) for x, y in zip(a.module.state_dict().values(), b.module.state_dict().values()))


PLUGINS_DOC = ROOT / "docs" / "plugins.md"


def example_files(doc: str) -> dict[str, str]:
    """Every fenced block of `doc` whose first line is `# <path>`: path -> text."""
    blocks = re.findall(r"```\w+\n# (\S+)\n(.*?)```", doc, flags=re.S)
    return {path: text for path, text in blocks}


def options(group: str) -> list[str]:
    """Every option of a config group, from its folder: the group is the registry. Never empty."""
    found = sorted(p.stem for p in (CONF / group).glob("*.yaml"))
    assert found, f"no options in {CONF / group}"
    return found


def structural_options() -> list[str]:
    """The options of the pruning group that remove whole channels."""
    return [o for o in options("pruning") if OmegaConf.load(CONF / "pruning" / f"{o}.yaml")["_target_"].endswith(
        "StructuralPruner")]


def language_models() -> list[str]:
    """The options of the model group that build causal LMs (model=causal_lm and the sizes trained from scratch)."""
    return [o for o in options("model") if OmegaConf.load(CONF / "model" / f"{o}.yaml")["_target_"]
            == "prunelab.models.causal_lm"]


def widths(model: nn.Module) -> list[int]:
    """The output width of every Conv2d and Linear layer, in module order."""
    return [m.weight.shape[0] for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def kept_per_group(mask: torch.Tensor, m: int) -> torch.Tensor:
    """Kept entries in every group of `m` consecutive weights along a layer's reduction dimension."""
    v = reduction_view(mask)
    return v.reshape(*v.shape[:2], -1, m).sum(-1)


def cli(*args: str, cwd, store=None, **popen) -> subprocess.Popen:
    """Start `python -m prunelab *args` on this checkout (tests.* importable), with its own store."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    if store is not None:
        env["PRUNELAB_STORE"] = str(store)
    return subprocess.Popen([sys.executable, "-m", "prunelab", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def compose_config(*overrides: str):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def run(cfg, folder) -> RunResult:
    """`cfg` run in `folder` (the store still shares dense models, as in a sweep)."""
    return run_spec(from_config(cfg, folder).at(folder))


def prepare(cfg, folder) -> Parts:
    """What `run` would train with, built and checked."""
    return prepare_spec(from_config(cfg, folder).at(folder))


def text_corpus(folder: Path, sentences: tuple[int, int, int] = (1200, 150, 150), seed: int = 0) -> Path:
    """`folder` with train.txt, valid.txt and test.txt of seeded sentences over a small vocabulary (learnable: a
    sentence is determiner, adjective, noun, verb, preposition, determiner, noun), `sentences` per split."""
    words = [["the", "a", "every"], ["big", "small", "red", "quick"], ["cat", "dog", "bird", "fox"],
             ["sat", "ran", "slept", "jumped"], ["on", "under", "near"], ["the", "a"], ["mat", "tree", "house"]]
    g = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name, count in zip(("train", "valid", "test"), sentences):
        lines = [" ".join(g.choice(w) for w in words).capitalize() + "." for _ in range(count)]
        (folder / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return folder


def text_options(folder: Path, cache: Path) -> list[str]:
    """Overrides that point dataset=text at the corpus in `folder`, caching tokens in `cache`."""
    return [f"dataset.data_dir={folder}", f"dataset.cache_dir={cache}"]


def tiny_llama(vocab_size: int = 256, positions: int = 64, seed: int = 0) -> nn.Module:
    """A seeded 2-layer LLaMA of hidden size 32 (prunelab's CausalLM)."""
    from prunelab.models import causal_lm

    torch.manual_seed(seed)
    return causal_lm(config={"model_type": "llama", "vocab_size": vocab_size, "hidden_size": 32,
                             "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                             "max_position_embeddings": positions})


# -- doubles ------------------------------------------------------------------------------------
class Stopped(Exception):
    """Stands for a crash or a kill."""


def stop_at_epoch_start(monkeypatch, epoch: int) -> None:
    """Make the pruning callback raise `Stopped` when epoch `epoch` starts."""
    original = PruningCallback.on_train_epoch_start

    def crash(self, trainer, pl_module):
        if trainer.current_epoch == epoch:
            raise Stopped
        return original(self, trainer, pl_module)

    monkeypatch.setattr(PruningCallback, "on_train_epoch_start", crash)


def stop_in_epoch(monkeypatch, epoch: int) -> None:
    """Make the pruning callback raise `Stopped` after the first training step of epoch `epoch`: a kill that
    lands after the epoch's start (where a stage's row is logged) and before its checkpoint."""
    original = PruningCallback.on_train_batch_end

    def crash(self, trainer, pl_module, outputs, batch, batch_idx):
        original(self, trainer, pl_module, outputs, batch, batch_idx)
        if trainer.current_epoch == epoch:
            raise Stopped

    monkeypatch.setattr(PruningCallback, "on_train_batch_end", crash)


def tiny_net() -> nn.Module:
    """A conv layer and three Linears with seeded weights (the last one the classifier)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 33), nn.ReLU(),
                         nn.Linear(33, 10))


def ctx(seed: int = 0, data=()) -> ScoreContext:
    """A score context over the batches `data`, drawing from a generator seeded with `seed`."""
    return ScoreContext(batches=lambda: iter(data), loss=nn.functional.cross_entropy,
                        generator=torch.Generator().manual_seed(seed))


def conv_net() -> nn.Module:
    """A conv (8 -> 8 channels) and two Linears whose shapes hold 2:4, 4:8 and 4x4 blocks; a 10-way output."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 32), nn.ReLU(),
                         nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10))


def image_batches(n: int = 3, size: int = 16, seed: int = 1) -> list:
    """`n` seeded batches of `size` 8x4x4 inputs with 10-way labels, for `conv_net`."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 8, 4, 4, generator=g), torch.randint(0, 10, (size,), generator=g)) for _ in range(n)]


class SpyPruner(UnstructuredPruner):
    """Records the weights it is given at every pruning step."""

    seen: list = []

    def prune(self, model, masks, target, ctx):
        SpyPruner.seen.append({n: p.detach().clone() for n, p in self.parameters(model).items()})
        return super().prune(model, masks, target, ctx)



class NaNPruner(UnstructuredPruner):
    """Prunes, then spoils one weight, so that the next fine-tuning epoch has a NaN loss."""

    def prune(self, model, masks, target, ctx):
        masks = super().prune(model, masks, target, ctx)
        with torch.no_grad():
            next(iter(self.parameters(model).values())).view(-1)[0] = float("nan")
        return masks


class FailingPruner(UnstructuredPruner):
    """Fails at the second pruning step, as a real bug would."""

    def prune(self, model, masks, target, ctx):
        if target > 0.5:
            raise RuntimeError("pruning bug")
        return super().prune(model, masks, target, ctx)


class FakeHost:
    """A training loop reduced to what the engine asks of it; records what the engine told it."""

    steps_per_epoch, input_shape, is_primary, calibration = 2, [6], True, None

    def __init__(self):
        torch.manual_seed(0)
        self.model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
        self.stages, self.rebuilt, self.evaluated, self.total_epochs = [], 0, [], None

    def evaluate(self, split):
        self.evaluated.append(split)
        return {"acc": {"val": 0.5, "test": 0.25}[split]}

    def train_batches(self):
        return [(torch.randn(4, 6), torch.tensor([0, 1, 2, 0]))]

    def set_stage(self, epochs, lr_scale):
        self.stages.append((epochs, lr_scale))

    def rebuild_optimizers(self):
        self.rebuilt += 1

    def model_changed(self):
        pass

    def set_total_epochs(self, epochs):
        self.total_epochs = epochs


def drive(engine, host: FakeHost, epochs: range, step: int = 0, after_step=None, grads=None, lr: float = 0.01,
          drift: float = 0.001) -> int:
    """What a training loop does around each epoch and step; a fake SGD step (`lr`, plus a `drift` that would
    revive pruned weights, which get no gradient) moves every weight. The gradients are `grads(step, name, param)`,
    else ones. `after_step(step)` is called after each step."""
    for epoch in epochs:
        engine.epoch_start(host, epoch, step)
        for _ in range(host.steps_per_epoch):
            for n, p in host.model.named_parameters():
                p.grad = grads(step, n, p) if grads is not None else torch.ones_like(p)
            engine.before_optimizer_step(host, step)
            with torch.no_grad():
                for p in host.model.parameters():
                    p.sub_(lr * p.grad - drift)
            step += 1
            engine.batch_end(host, step)
            if after_step is not None:
                after_step(step)
        engine.epoch_end(torch.tensor(1.0), epoch, host.model)
    return step



# -- fake runs and W&B files --------------------------------------------------------------------
TARGETS = (0.5, 0.8)


def fake_results(method: str, seed: int, accs, targets=TARGETS, family: str | None = "magnitude", **columns):
    """One run's rows: stage 0 dense, then one stage per target, with the given test accuracies; both sparsities
    at the targets unless `columns` say otherwise."""
    stages = range(len(accs))
    rows = pd.DataFrame({
        "method": method, "task": "classification", "model": "mlp", "dataset": "digits", "schedule": "iterative",
        "seed": seed, "stage": list(stages), "target_sparsity": [0.0, *targets][: len(accs)],
        "weight_sparsity": [0.0, *targets][: len(accs)], "param_sparsity": [0.0, *targets][: len(accs)],
        "params": 1000,
        "nonzero_params": [int(1000 * (1 - s)) for s in [0.0, *targets][: len(accs)]],
        "acc_before_ft": accs, "val_acc": accs, "test_acc": accs, "epoch": list(stages),
        "stage_time_s": 1.0, "wall_time_s": [1.0 + s for s in stages], **columns,
    })
    return rows if family is None else rows.assign(family=family)


def write_run(run_dir: Path, method: str, seed: int, accs, targets=TARGETS, family: str | None = "magnitude",
              scope: str = "global", dataset: str = "digits", **columns) -> Path:
    """A run directory as `prunelab` leaves it (results.csv, .hydra/config.yaml, layer_sparsity.csv)."""
    run_dir = Path(run_dir)
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    fake_results(method, seed, accs, targets, family, dataset=dataset, **columns).to_csv(run_dir / "results.csv",
                                                                                         index=False)
    pruning = {"name": method, "scope": scope, **({"family": family} if family else {})}
    config = {"pruning": pruning, "schedule": {"name": "iterative", "targets": list(targets)},
              "model": {"name": "mlp"}, "dataset": {"name": dataset, "seed": "${seed}"}, "seed": seed}
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    last = [0.0, *targets][len(accs) - 1]
    pd.DataFrame({"layer": ["fc1.weight", "fc2.weight"], "params": [800, 200], "sparsity": [last + 0.05, last - 0.2]}
                 ).to_csv(run_dir / "layer_sparsity.csv", index=False)
    return run_dir


def write_sweep(sweep_dir: Path, methods: dict[str, list], seeds=(0, 1), **kwargs) -> Path:
    """A multirun directory: one run per method and seed; `methods` maps a method to its accuracies
    (seed s adds 0.01 * s)."""
    jobs = [(method, accs, seed) for method, accs in methods.items() for seed in seeds]
    for i, (method, accs, seed) in enumerate(jobs):
        write_run(sweep_dir / f"{i}_{method}_s{seed}", method, seed, [a + 0.01 * seed for a in accs], **kwargs)
    return sweep_dir


# -- W&B's offline transaction log (run-<id>.wandb): a LevelDB-style log of protobuf Records -----------
BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def wandb_records(path: Path):
    """Every `wandb_internal_pb2.Record` in a .wandb file, in order."""
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", "not a W&B transaction log"
    pos, chunks = HEADER, b""
    while pos + HEADER <= len(data):
        if BLOCK - pos % BLOCK < HEADER:  # a block's tail too short for a header is padding
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        chunk, pos = data[pos + HEADER:pos + HEADER + length], pos + HEADER + length
        if kind == 0:  # zero-filled padding
            continue
        chunks = chunk if kind in (FULL, FIRST) else chunks + chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunks)
            yield record


def _items(items) -> dict:
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items}


def wandb_run_file(run_dir: Path) -> dict:
    """What a W&B run logged, read back from its .wandb file: the run record, history rows, summary
    updates, metric definitions, artifacts and exit record."""
    found = {"run": None, "history": [], "summary": {}, "metrics": [], "artifacts": [], "exit": None}
    (log,) = Path(run_dir).glob("run-*.wandb")  # a folder named in the same second as another gets a "-1" suffix
    for record in wandb_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            found["history"].append(_items(record.history.item))
        elif kind == "summary":
            found["summary"].update(_items(record.summary.update))
        elif kind == "metric":
            found["metrics"].append(record.metric)
        elif kind == "artifact":
            found["artifacts"].append(record.artifact)
        elif kind in ("run", "exit"):
            found[kind] = getattr(record, kind)
    return found


def wandb_run_dirs(root: Path) -> list[Path]:
    return sorted(Path(root).glob("wandb/offline-run-*"))
