"""How a run's results were made, recorded beside them (`protocol.json`) and in its W&B config: the code, the
libraries, the device, the data and the fine-tuning budget; once training has set the data up, protocol.json
also gets the size of the evaluated splits (`split_samples`). A finished run made by other code than now is
not handed out silently (`stale_warning`)."""

import functools
import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path

from prunelab import version
from prunelab.errors import ConfigError
from prunelab.paths import RunPaths

LIBRARIES = ("torch", "torchvision", "pytorch-lightning", "torch-pruning", "transformers", "tokenizers")
# protocol.json's count of the samples of each evaluated split, {"val": n, "test": n} (`split_samples`).
SAMPLES = "samples"


def _git(folder: Path, *args: str) -> str | None:
    """The output of `git -C folder *args`; None when git is missing or fails."""
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.cache
def code_identity() -> dict:
    """prunelab's version and, when it runs from a git checkout, the commit and whether tracked files differ
    from it (`dirty`); both None outside a checkout. Computed once per process."""
    package = Path(version.__file__).resolve().parent
    top = _git(package, "rev-parse", "--show-toplevel")
    commit = status = None
    if top is not None and Path(top).resolve() / "src" / "prunelab" == package:  # prunelab's own checkout
        commit = _git(package, "rev-parse", "HEAD")
        status = _git(package, "status", "--porcelain", "--untracked-files=no")
    return {"prunelab": version.__version__, "commit": commit, "dirty": None if status is None else bool(status)}


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def data_fingerprint(datamodule) -> str | None:
    """`datamodule.fingerprint()` where the datamodule has one, else a sha256 of its first training batch
    (None if it has no tensors); the global RNG is left as it was."""
    fingerprint = getattr(datamodule, "fingerprint", None)
    if fingerprint is not None:
        return fingerprint()
    import torch

    datamodule.setup("fit")
    with torch.random.fork_rng(devices=[]):
        batch = next(iter(datamodule.train_dataloader()))
    tensors = [t for t in (batch if isinstance(batch, (list, tuple)) else [batch]) if isinstance(t, torch.Tensor)]
    digest = hashlib.sha256()
    for t in tensors:
        digest.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest() if tensors else None


def split_samples(datamodule) -> dict[str, int]:
    """The number of samples in the validation and the test split, read from the datamodule's loaders once it is
    set up (after training): the resolution of a metric that counts samples (one test image is 1/N of the test
    accuracy). A split whose data set has no length is left out."""
    found = {}
    for split, loader in (("val", datamodule.val_dataloader), ("test", datamodule.test_dataloader)):
        try:
            found[split] = len(loader().dataset)
        except (AttributeError, TypeError):  # no data set, or an iterable one
            pass
    return found


def budget(config: dict, schedule) -> list[dict]:
    """Epochs, learning rate and LR schedule of every stage (0: dense training)."""
    lr = config["optimizer"].get("lr")
    return [{"stage": k, "epochs": schedule.stage_epochs(k),
             "lr": None if lr is None else lr * schedule.stage_lr_scale(k),
             "lr_schedule": config["scheduler"].get("_target_")} for k in range(schedule.num_stages + 1)]


def record(config: dict, datamodule, schedule, device) -> dict:
    """What protocol.json holds for a run of `config` on `device` (a torch.device)."""
    import torch

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {"code": code_identity(), "libraries": {lib: _version(lib) for lib in LIBRARIES},
            "device": f"{device} ({name})" if name else str(device), "data": data_fingerprint(datamodule),
            "budget": budget(config, schedule)}


def _describe(code: dict) -> str:
    if not code.get("commit"):
        return "no recorded commit"
    return f"commit {code['commit'][:12]}" + (" with uncommitted changes" if code.get("dirty") else "")


def stale_warning(root: Path, recorded: dict) -> str | None:
    """The warning for skipping the finished run in `root` whose protocol is `recorded`; None when it was made
    by the same code (commit and dirty state) as now."""
    then, now = recorded.get("code", {}), code_identity()
    if (then.get("commit"), then.get("dirty")) == (now["commit"], now["dirty"]):
        return None
    return (f"skipped {root}: it is done, but its results were made by {_describe(then)} and the code is now "
            f"{_describe(now)}; they may be stale: set rerun=true to run it again")


def check_dense_record(path: Path | str, model: dict, datamodule) -> None:
    """A ConfigError when the dense weights at `path` were made, by the record beside them (the run folder's
    protocol.json and the dense settings.json of `prunelab.runs.cache`), from other data than `datamodule`'s
    or another `model` node; weights without a record load unchecked."""
    folder = RunPaths(Path(path).parent)
    recorded = json.loads(folder.protocol.read_text()) if folder.protocol.is_file() else {}
    if recorded.get("data") and (now := data_fingerprint(datamodule)) != recorded["data"]:
        raise ConfigError("dense_checkpoint", f"{path} was trained on other data (fingerprint {recorded['data'][:16]}, "
                          f"this run's data {str(now)[:16]}; see {folder.protocol})",
                          "give the dataset settings it was trained on, or train the dense model again")
    settings = Path(path).parent / "settings.json"
    made = json.loads(settings.read_text()).get("model") if settings.is_file() else None
    if made is not None and made != model:
        raise ConfigError("dense_checkpoint", f"{path} was trained as model {made}, not {model}",
                          f"run with the model settings of {settings}")
