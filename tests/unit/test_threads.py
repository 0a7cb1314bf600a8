"""Job-aware torch threads: the arithmetic, the checks, and that a run applies the setting."""

import pytest

from prunelab.errors import ConfigError
from prunelab.keys import NOT_RESULTS
from prunelab.runs import threads
from prunelab.runs.spec import from_config
from tests.helpers import MICRO, compose_config


@pytest.mark.parametrize(("setting", "cores", "jobs", "expected"), [
    ("auto", 2, 1, None),  # alone: torch's default, as before the setting existed
    ("auto", 2, 2, 1),
    ("auto", 16, 4, 4),
    ("auto", 16, 3, 5),
    ("auto", 2, 10, 1),  # more jobs than cores: at least one thread each
    (3, 2, 2, 3),  # a number overrides
    (1, 16, 1, 1),
])
def test_thread_count_shares_the_cores_among_the_jobs(setting, cores, jobs, expected):
    assert threads.thread_count(setting, cores, jobs) == expected


@pytest.mark.parametrize(("n_jobs", "cores", "expected"), [(2, 8, 2), (None, 8, 1), (-1, 8, 8), (-2, 8, 7), (0, 8, 1),
                                                           (-20, 8, 1)])
def test_launcher_jobs_follows_joblib(n_jobs, cores, expected):
    assert threads.launcher_jobs(n_jobs, cores) == expected


@pytest.mark.parametrize("bad", [0, -1, "many", 1.5, True])
def test_a_bad_setting_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="threads"):
        threads.check_setting(bad)


def test_the_config_check_rejects_a_bad_setting(tmp_path):
    with pytest.raises(ConfigError, match="threads"):
        from_config(compose_config("threads=0"), tmp_path)


def test_the_jobs_variable_overrides_and_is_checked(monkeypatch):
    monkeypatch.setenv(threads.JOBS_VARIABLE, "3")
    assert threads.concurrent_jobs(cores=8) == 3
    monkeypatch.setenv(threads.JOBS_VARIABLE, "zero")
    with pytest.raises(ConfigError, match=threads.JOBS_VARIABLE):
        threads.concurrent_jobs(cores=8)


def test_outside_a_multirun_a_job_runs_alone(monkeypatch):
    monkeypatch.delenv(threads.JOBS_VARIABLE, raising=False)
    assert threads.concurrent_jobs(cores=8) == 1


def test_threads_are_not_part_of_a_runs_identity(tmp_path):
    assert "threads" in NOT_RESULTS
    keys = {from_config(compose_config(*MICRO, f"threads={t}", f"store_dir={tmp_path}"), tmp_path).key
            for t in ("auto", 1, 2)}
    assert len(keys) == 1

