"""One process at a time: an exclusive file lock that the kernel releases when its holder dies, however it dies."""

import fcntl
import logging
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


@contextmanager
def locked(path: Path, waiting: str):
    """Hold an exclusive lock on `path`; while another process holds it, log `waiting` and wait.

    A lock left by a killed process is free again: `flock` locks end with their process.
    """
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("%s (%s)", waiting, path)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
