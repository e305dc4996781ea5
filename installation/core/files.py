"""Files the runtime writes: whole or not at all (atomic writes: a temporary file beside the target, then
a rename), and rotating log files (a show that runs for months can't fill a disk, nor a flood empty them:
core/logguard.py)."""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from installation.core.logguard import LogGuard

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed over `path` when the block ends without an
    exception, removed otherwise (a crash or a second Ctrl-C mid-write leaves the old file whole)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: Path, data: str | bytes, sync: bool = True) -> None:
    """Write a whole file so that readers (and a power cut) see the old content or the new, nothing between.

    sync=False skips the fsyncs: for files rewritten every few seconds (a heartbeat, a soak's samples),
    where one lost to a power cut is stale anyway and a flash card is spared a sync each time."""
    raw = data.encode() if isinstance(data, str) else data
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(raw)
        if sync:
            f.flush()
            os.fsync(f.fileno())
    if not sync:
        return
    try:  # the rename itself survives a power cut only once the folder is synced
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def rotating_log_handler(path: Path, max_bytes: int, backups: int) -> logging.handlers.RotatingFileHandler:
    """A rotating log file at `path` (INFO and up, the console's format); the caller adds it to a logger.
    Raises OSError when the file can't be opened."""
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(LogGuard())  # long lines cut, floods held back: an attack can't rotate the history away
    return handler
