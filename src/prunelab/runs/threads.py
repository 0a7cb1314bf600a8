"""Torch's intra-op threads for a job that may share the machine's cores with other jobs of its sweep.

Two jobs of a parallel sweep each running torch's default threads (one per core) fight for the cores:
a 2-job sweep on 2 cores measured 45 s to 204 s against 22 s with one thread each. `threads: auto`
gives each of the jobs running at once its share of the cores this process may use; a single job keeps
torch's default, so its results are those of any earlier single run.
"""

import logging
import os

from prunelab.errors import ConfigError

log = logging.getLogger(__name__)

JOBS_VARIABLE = "PRUNELAB_JOBS"  # how many jobs run at once, for launchers that do not say (overrides theirs)


def check_setting(value) -> None:
    """Raise ConfigError unless `value` is `auto` or an integer >= 1."""
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return
    raise ConfigError("threads", f"{value!r} is neither auto nor an integer >= 1",
                      "set threads=auto (share the cores among parallel jobs) or threads=<n>")


def launcher_jobs(n_jobs: int | None, cores: int) -> int:
    """Jobs a joblib-style launcher runs at once for its `n_jobs` (negative: cores + 1 + n_jobs; None: 1)."""
    if n_jobs is None or n_jobs == 0:
        return 1
    return max(1, n_jobs if n_jobs > 0 else cores + 1 + n_jobs)


def thread_count(setting, cores: int, jobs: int) -> int | None:
    """Threads for one of `jobs` jobs sharing `cores` cores: the setting if it is a number; with `auto`,
    None (torch's default) for a job alone, else its share of the cores, at least 1."""
    check_setting(setting)
    if setting != "auto":
        return setting
    return None if jobs <= 1 else max(1, cores // jobs)


def available_cores() -> int:
    """The cores this process may run on (its affinity: a scheduler's allocation, taskset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this platform
        return os.cpu_count() or 1


def concurrent_jobs(cores: int) -> int:
    """How many jobs run beside each other, this one included: PRUNELAB_JOBS if set, else the running Hydra
    launcher's `n_jobs` (joblib) in a multirun, else 1."""
    if os.environ.get(JOBS_VARIABLE):
        jobs = os.environ[JOBS_VARIABLE]
        if not jobs.isdigit() or int(jobs) < 1:
            raise ConfigError(JOBS_VARIABLE, f"{jobs!r} is not an integer >= 1", f"export {JOBS_VARIABLE}=2 or unset it")
        return int(jobs)
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return 1
    return launcher_jobs(HydraConfig.get().launcher.get("n_jobs"), cores)


def apply(setting) -> int:
    """Set torch's threads for this job from the `threads` setting; returns the count torch now uses."""
    import torch

    cores = available_cores()
    jobs = concurrent_jobs(cores)
    count = thread_count(setting, cores, jobs)
    if count is not None:
        torch.set_num_threads(count)
        log.info("threads: %d (threads=%s, %d jobs at once on %d cores)", count, setting, jobs, cores)
    return torch.get_num_threads()
