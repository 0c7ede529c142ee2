"""The store volume: atomic writes, the sync marker, and leftovers of a crash.

The runtime polls this volume while we write it, so nothing it may read is
ever written in place: each file or folder is built under a hidden temporary
name beside its target and renamed over it, which is atomic on one file system.
The runtime runs as another user than the sync step, so everything published
is made world-readable.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MARKER = ".swarmai-synced"
# Prefix of everything half-built in the store; never a valid published name.
TEMP_PREFIX = ".tmp-"
_READABLE = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
_ENTERABLE = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so readers see the old or the new file, never half."""
    fd, temp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temp, 0o644)  # mkstemp makes it private to us
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def read_marker(store: Path) -> dict[str, Any] | None:
    """The marker's fields, or None when it is missing or unreadable."""
    try:
        data = json.loads((store / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_marker(store: Path, fields: Mapping[str, str]) -> Path:
    """Record what the store now holds; its existence is the step's healthcheck."""
    marker = store / MARKER
    write_text_atomic(marker, json.dumps(dict(fields), indent=2, sort_keys=True) + "\n")
    return marker


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_readable(root: Path) -> None:
    """Let the runtime's user read a tree we built (temp dirs are created 0700)."""
    paths = [root, *root.rglob("*")] if root.is_dir() else [root]
    for path in paths:
        if path.is_symlink():
            continue
        extra = _READABLE | (_ENTERABLE if path.is_dir() else 0)
        os.chmod(path, stat.S_IMODE(path.stat().st_mode) | extra)


def remove_leftovers(directory: Path) -> None:
    """Delete what a killed pass left half-built; the runtime never reads these names."""
    if not directory.is_dir():
        return
    for entry in directory.iterdir():
        if entry.name.startswith(TEMP_PREFIX):
            log.info("removing leftover %s", entry)
            remove(entry)


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
