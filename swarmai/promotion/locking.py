"""Per-file exclusive locks (``flock``) that say who holds them.

The cron script holds one for a whole run of a policy; ``swarmai promote`` and
``rollback`` hold one per stack, so two promotions of one stack never overlap,
whoever starts them. The kernel releases a lock when its holder exits, however
it exits (kill -9 included): there is no stale lock to clean up. While held,
the file records the holder (pid, host, started, ...) as one JSON object.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from swarmai.errors import Busy, OperationError
from swarmai.files import open_no_follow


@dataclass(frozen=True)
class Lock:
    acquired: bool
    holder: Mapping[str, Any] = field(default_factory=dict)  # the other run, when not acquired


def open_lock(path: Path) -> int:
    """The lock file's descriptor (the file is created, never removed: removing a
    flock file would let two runs lock two different files); a symbolic link in its
    place is refused, not followed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OperationError(f"cannot create the folder of the lock file {path}: "
                             f"{error.strerror or error}") from None
    return open_no_follow(path, os.O_RDWR | os.O_CREAT, what="lock file")


@contextmanager
def exclusive(fd: int, me: Mapping[str, Any]) -> Iterator[Lock]:
    """Hold ``flock(LOCK_EX | LOCK_NB)`` on ``fd`` for the block, or report who does.

    While held, the file records the holder (``me``) as one JSON object; it is
    emptied again before the lock is released, so a record is never a past holder's.
    The descriptor is closed on the way out, which releases the lock.
    """
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield Lock(False, _read_holder(fd, HOLDER_PATIENCE_S))
            return
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(dict(me)) + "\n").encode("utf-8"), 0)
        try:
            yield Lock(True)
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)


# How long a run that found the lock taken waits for the holder to write itself:
# the holder writes right after its flock, but a loaded machine can deschedule it
# in between, and "pid unknown" is no help to whoever has to find that run.
HOLDER_PATIENCE_S = 2.0


def _read_holder(fd: int, patience_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + patience_s
    while True:
        try:
            holder = json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
        except ValueError:  # empty or half-written: the holder has not written itself yet
            holder = None
        if isinstance(holder, dict):
            return holder
        if time.monotonic() >= deadline:
            return {}
        time.sleep(0.02)


def describe_holder(holder: Mapping[str, Any]) -> str:
    if not holder:
        return "pid unknown"
    run = f"run {holder['run_id']}, " if "run_id" in holder else ""
    command = f"`{holder['command']}`, " if "command" in holder else ""
    return (f"{command}pid {holder.get('pid', '?')} on {holder.get('host', '?')}, {run}"
            f"started {holder.get('started', '?')}")


def holder_age_s(holder: Mapping[str, Any]) -> float | None:
    try:
        started = datetime.fromisoformat(str(holder["started"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None
    return (datetime.now(UTC) - started).total_seconds()


def this_process(**fields: Any) -> dict[str, Any]:
    """What a lock file records of its holder: this process, and ``fields``."""
    started = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": started, **fields}


@contextmanager
def held(path: Path, me: Mapping[str, Any], *, what: str) -> Iterator[None]:
    """Hold the lock on ``path`` for the block; :class:`Busy` (nothing done) naming the
    holder when another process holds it."""
    with exclusive(open_lock(path), me) as lock:
        if not lock.acquired:
            raise Busy(f"another {what} is in progress ({describe_holder(lock.holder)}; "
                       f"lock file {path}): nothing was done; run this again once it ends")
        yield
