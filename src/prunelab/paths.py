"""Every file of a run folder, of the dense-model cache and of a sweep's comparison, named once (OpenLTH's
`paths.py` rule); where data caches live."""

import os
from dataclasses import dataclass
from pathlib import Path


def user_cache(kind: str) -> Path:
    """$XDG_CACHE_HOME/prunelab/<kind>, else ~/.cache/prunelab/<kind>: where what is derived from data folders
    (decoded images, tokenizers, token ids) is cached by default, since the folders may be read-only."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "prunelab" / kind


@dataclass(frozen=True)
class RunPaths:
    """The files of one run folder."""

    root: Path

    @property
    def results(self) -> Path:
        """One row per stage: the accuracy-vs-sparsity curve."""
        return self.root / "results.csv"

    @property
    def layers(self) -> Path:
        """One row per stage and layer: weights and sparsity."""
        return self.root / "layer_sparsity.csv"

    @property
    def status(self) -> Path:
        """`running`, `done` or `failed`, with the sweep objective or the error."""
        return self.root / "status.json"

    @property
    def protocol(self) -> Path:
        """How the results were made: code and library versions, device, data fingerprint, fine-tuning budget."""
        return self.root / "protocol.json"

    @property
    def lock(self) -> Path:
        """Held by the one process that works on the run (`runs.lock.locked`); others wait for it."""
        return self.root / "run.lock"

    @property
    def dense(self) -> Path:
        """The dense model's state_dict at the end of stage 0."""
        return self.root / "dense.pt"

    @property
    def masks(self) -> Path:
        """Every stage's masks (with `schedule.save_masks`)."""
        return self.root / "masks.pt"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        """The checkpoint of the last completed epoch, from which a killed run continues."""
        return self.checkpoints / "last.ckpt"

    @property
    def model_state(self) -> Path:
        """The final model's state, masks, config and removal history (`training.export.load_model`)."""
        return self.root / "model_final_state.pt"

    @property
    def model_program(self) -> Path:
        """The final model as a torch.export program that runs without prunelab."""
        return self.root / "model_final.pt2"

    @property
    def pretrained_model(self) -> Path:
        """A causal LM's final model in transformers' layout (`save_pretrained`), for `from_pretrained`."""
        return self.root / "model_final_hf"

    @property
    def onnx_model(self) -> Path:
        """The final model as ONNX with a dynamic batch axis (`export_onnx`, with the `export` extra)."""
        return self.root / "model_final.onnx"

    @property
    def onnx_record(self) -> Path:
        """The ONNX check of the final model: ONNX Runtime against PyTorch, CPU latencies of both, or the error."""
        return self.root / "onnx.json"

    @property
    def wandb_model(self) -> Path:
        """The final weights as a plain state_dict, uploaded as a W&B artifact."""
        return self.root / "model.pt"

    @property
    def wandb_run(self) -> Path:
        """The run's W&B run: its id and how many stages it holds, so that a continued run continues it."""
        return self.root / "wandb_run.json"

    @property
    def hydra_config(self) -> Path:
        """The composed config Hydra saved for the job."""
        return self.root / ".hydra" / "config.yaml"

    def tables(self) -> list[Path]:
        """The files a job copies into its Hydra folder when its run lives in the store."""
        return [self.results, self.layers, self.masks, self.protocol, self.onnx_record]


def run_folder(store_dir: Path | str, name: str, key: str) -> RunPaths:
    """`<store_dir>/runs/<name>-<key>`: one folder per run name and settings hash."""
    return RunPaths(Path(store_dir) / "runs" / f"{name}-{key}")


@dataclass(frozen=True)
class DensePaths:
    """The files of one shared dense model in `<store_dir>/dense/<key>`."""

    root: Path

    @property
    def checkpoint(self) -> Path:
        return self.root / "dense.ckpt"

    @property
    def complete(self) -> Path:
        """Written last: the entry may be read once this exists."""
        return self.root / "complete"

    @property
    def settings(self) -> Path:
        return self.root / "settings.json"

    @property
    def lock(self) -> Path:
        return self.root.with_suffix(".lock")

    @property
    def work(self) -> Path:
        """Where the dense model trains (and resumes) before it is published."""
        return self.root.with_suffix(".work")

    @property
    def trained_log(self) -> Path:
        """One line per dense training in this store: what sharing saved."""
        return self.root.parent / "trained.log"


def dense_entry(store_dir: Path | str, key: str) -> DensePaths:
    return DensePaths(Path(store_dir) / "dense" / key)


@dataclass(frozen=True)
class ComparisonPaths:
    """The files of a sweep's comparison, in the sweep directory (or `prunelab-report --out`)."""

    root: Path

    @property
    def figure(self) -> Path:
        """Accuracy against the weights remaining, one line per series."""
        return self.root / "comparison.png"

    @property
    def table(self) -> Path:
        """Per series and target sparsity, the mean and std over seeds of every results column."""
        return self.root / "comparison.csv"

    @property
    def document(self) -> Path:
        """The comparison's tables as markdown."""
        return self.root / "comparison.md"

    def files(self) -> list[Path]:
        """Every file the comparison writes."""
        return [self.figure, self.table, self.document]
