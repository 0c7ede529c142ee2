"""The lock file says who holds it, even when the holder is slow to write itself."""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from pathlib import Path

import pytest

from swarmai.promotion import locking


def test_the_holder_is_recorded_while_held_and_cleared_on_release(tmp_path: Path) -> None:
    path = tmp_path / "stack.lock"
    with locking.exclusive(locking.open_lock(path), {"pid": 1, "host": "a"}) as lock:
        assert lock.acquired
        assert json.loads(path.read_text()) == {"pid": 1, "host": "a"}
        with locking.exclusive(locking.open_lock(path), {"pid": 2}) as other:
            assert (other.acquired, other.holder) == (False, {"pid": 1, "host": "a"})
    assert path.read_text() == ""


def test_a_run_that_finds_the_lock_waits_for_the_holder_to_write_itself(
        tmp_path: Path) -> None:
    path = tmp_path / "stack.lock"
    fd = locking.open_lock(path)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held, nothing written yet
    late = threading.Timer(0.3, lambda: os.pwrite(fd, b'{"pid": 7, "host": "b"}\n', 0))
    late.start()
    try:
        with locking.exclusive(locking.open_lock(path), {"pid": 2}) as lock:
            assert (lock.acquired, lock.holder) == (False, {"pid": 7, "host": "b"})
    finally:
        late.join()
        os.close(fd)


def test_a_holder_that_never_writes_itself_is_unknown_after_the_patience(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(locking, "HOLDER_PATIENCE_S", 0.2)
    path = tmp_path / "stack.lock"
    fd = locking.open_lock(path)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        started = time.monotonic()
        with locking.exclusive(locking.open_lock(path), {"pid": 2}) as lock:
            assert (lock.acquired, lock.holder) == (False, {})
        assert time.monotonic() - started >= 0.2
        assert locking.describe_holder(lock.holder) == "pid unknown"
    finally:
        os.close(fd)
