"""One job (a single run, or one job of a multirun): skip it if done, resume it if not, and in a sweep
keep its failure to itself. A run folder has one writer at a time (its `run.lock`); a finished run made
by other code than now is skipped with a warning, and rerun with `rerun=true`.

Every check of a run comes before its folder in the store, its logger or its W&B run exist, so a bad
config leaves nothing behind but its Hydra folder.

Every job leaves a `status.json` in its Hydra folder (and in its run folder in the store):
`status` is `done`, `failed` or `interrupted` (Ctrl-C: the same command continues it); a failure
says why, and a divergence at which stage and sparsity. `SweepSummary` reads them at the end of a
multirun, prints what failed and exits non-zero when anything did.
"""

import contextlib
import errno
import logging
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from prunelab import atomic, results, tasks
from prunelab.errors import ConfigError, Diverged, Interrupted
from prunelab.paths import RunPaths
from prunelab.runs.folder import read_protocol, read_results, read_status, write_status
from prunelab.runs.lock import locked
from prunelab.runs.protocol import stale_warning
from prunelab.runs.spec import RunSpec, from_config
from prunelab.tasks import Task

if TYPE_CHECKING:  # the sweep summary reads statuses without loading torch; a bad config answers without pandas
    import pandas as pd

    from prunelab.runs.run import Parts

log = logging.getLogger(__name__)


def objective(rows: "pd.DataFrame", task: Task) -> float:
    """What a sweeper optimises: the task's validation metric after fine-tuning at the last target (set the
    sweeper's direction to the metric's: maximise accuracy, minimise perplexity)."""
    return float(rows[results.val(task.metric.name)].iloc[-1])


def failure(err: BaseException) -> dict:
    """The status of a run that raised `err`."""
    status = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
    if isinstance(err, Diverged):
        status.update(stage=err.stage, sparsity=err.sparsity, epoch=err.epoch)
    return status


def _record(run: RunPaths, job: RunPaths, status: dict, skipped: bool = False) -> None:
    """Write the run's status where it lives, and the job's (status, tables, masks, run folder) in the Hydra folder."""
    if not skipped:
        write_status(run, status)
    if run != job or skipped:
        write_status(job, {**status, "skipped": skipped, "run_dir": str(run.root)})
    if run != job:  # what later jobs and the sweep comparison read from the Hydra folder
        for source, target in zip(run.tables(), job.tables()):
            if source.is_file():
                atomic.copy_file(source, target)


def execute(cfg: DictConfig, job_dir: Path, isolate: bool = False) -> float:
    """Run `cfg` in its store folder, or skip it when it is done; returns `objective`.

    One process at a time works on a run folder: another that wants the same run waits for it, then skips
    the run or continues it. With `isolate` (a multirun job) a failure is recorded and NaN returned instead
    of raised.
    """
    job = RunPaths(Path(job_dir))
    try:
        spec = from_config(cfg, job_dir)
        writable(spec.paths.root)
        parts = None if _skipped(spec) else _preflight(spec)
    except Exception as err:
        return _failed(job, job, err, isolate)
    with _holding(spec.paths):
        try:
            return _skip_or_run(spec, job, parts)
        except KeyboardInterrupt:
            _record(spec.paths, job, {"status": "interrupted"})
            raise Interrupted(spec.paths.root) from None
        except Exception as err:
            return _failed(spec.paths, job, err, isolate)


def writable(folder: Path) -> None:
    """A ConfigError naming `store_dir` unless `folder` can be created and written; makes nothing (the folder, or
    the nearest existing folder above it, takes a temporary file that leaves no name behind)."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(existing))
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as err:
        raise ConfigError("store_dir", f"cannot write the run folder {folder} ({err.strerror or err})",
                          "give a folder you can write (store_dir=<path>), or store_dir=null") from None


def _follower() -> bool:
    """Whether this is another process of a data-parallel run than its first (rank > 0)."""
    return any(int(os.environ.get(rank, "0")) > 0 for rank in ("RANK", "LOCAL_RANK"))


def _holding(paths: RunPaths):
    """The run folder's lock (making the folder); the other processes of a data-parallel run follow the first,
    which holds it."""
    if _follower():
        return contextlib.nullcontext()
    paths.root.mkdir(parents=True, exist_ok=True)
    return locked(paths.lock, "run: waiting for the process that works on it")


def _skipped(spec: RunSpec) -> bool:
    """Whether the run is done and kept (no `rerun`), so that nothing needs building."""
    status = read_status(spec.paths)
    return status.get("status") == "done" and spec.paths.results.is_file() and not spec.config["rerun"]


def _preflight(spec: RunSpec) -> "Parts":
    """The run's parts, built and checked, its data fetched (`runs.run.preflight`)."""
    from prunelab.runs.run import preflight  # torch and Lightning load only when a job runs, not for the callback

    return preflight(spec, fetch=not _follower())


def _skip_or_run(spec: RunSpec, job: RunPaths, parts: "Parts | None" = None) -> float:
    """Skip the run when it is done (saying how its curve ended), else run it with `parts` (built here if None)."""
    from prunelab.runs.run import run
    from prunelab.training.recording import stage_line

    paths, task = spec.paths, tasks.from_config(spec.config)
    status = read_status(paths)
    if status.get("status") == "done" and paths.results.is_file():
        stale = stale_warning(paths.root, read_protocol(paths))
        if not spec.config["rerun"]:
            rows = read_results(paths, task)
            if stale:
                log.warning(stale)
            last = stage_line(rows.iloc[-1].to_dict(), len(rows) - 1, task.metric.name)
            log.info("skipped: %s is done: %s", paths.root, last)
            _record(paths, job, status, skipped=True)
            return status["objective"]
        log.info("rerun: %s is done, running it again", paths.root)
        shutil.rmtree(paths.checkpoints, ignore_errors=True)
        paths.wandb_run.unlink(missing_ok=True)  # run again from the start: a new W&B run
    write_status(paths, {"status": "running"})
    value = objective(run(spec, parts).results, task)
    _record(paths, job, {"status": "done", "objective": value})
    return value


def _failed(paths: RunPaths, job: RunPaths, err: Exception, isolate: bool) -> float:
    _record(paths, job, failure(err))
    if not isolate:
        raise err
    log.error("run failed: %s", err, exc_info=not isinstance(err, ConfigError))
    return math.nan


class SweepSummary(Callback):
    """At the end of a multirun: how many jobs ran, were skipped or failed; exit 1 if any failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        jobs = sorted(p.parent for p in Path(config.hydra.sweep.dir).glob("*/.hydra"))
        statuses = {job: read_status(RunPaths(job)) for job in jobs}
        failed = {job: s for job, s in statuses.items() if s.get("status") != "done"}
        skipped = sum(bool(s.get("skipped")) for s in statuses.values())
        print(f"prunelab: sweep of {len(jobs)} runs: {len(jobs) - skipped - len(failed)} ran,"
              f" {skipped} skipped, {len(failed)} failed", file=sys.stderr)
        for job, status in failed.items():
            where = f" at stage {status['stage']}, sparsity {status['sparsity']:.4f}" if "stage" in status else ""
            print(f"  failed: {job.name}: {status.get('error', 'did not finish')}{where}", file=sys.stderr)
        if failed:
            raise SystemExit(1)
