"""Files on the host that cannot be turned against it, or lost half-written.

Every file swarmai writes on the host goes through here:

- :func:`write_atomically` writes beside the target, flushes it to disk and
  renames it over: a crash leaves the old file or the new one, never half of one;
- :func:`create_atomically` does the same for a file that must never be
  replaced once it exists (a generated secret: a database was initialised with it);
- :func:`open_no_follow` opens a file swarmai appends to or locks (the cron
  script's audit log and lock) without following a symbolic link, so a link
  planted there cannot make swarmai write into another file it can reach;
- :func:`inside` turns a name into a path under a directory, and refuses one
  that leads out of it (``../x``, ``/etc/x``, or a linked folder).
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from swarmai.errors import OperationError, UsageError

PUBLIC = 0o644
PRIVATE = 0o600


def write_atomically(path: Path, text: str, *, mode: int = PUBLIC) -> None:
    """``path`` holds ``text`` (file mode ``mode``), all or nothing."""
    temporary = _written_aside(path, text, mode)
    try:
        os.replace(temporary, path)
    except OSError as error:
        _discard(temporary)
        raise _cannot_write(path, error) from None
    _sync_folder(path.parent)


def create_atomically(path: Path, text: str, *, mode: int = PUBLIC) -> bool:
    """Create ``path`` holding ``text``, all or nothing; False (and nothing written)
    when it exists already: a hard link to the written file never replaces one."""
    temporary = _written_aside(path, text, mode)
    try:
        os.link(temporary, path)
    except FileExistsError:
        return False
    except OSError as error:
        raise _cannot_write(path, error) from None
    finally:
        _discard(temporary)
    _sync_folder(path.parent)
    return True


def write_private(path: Path, text: str) -> None:
    """``path`` readable by its owner only (its folder created so too), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomically(path, text, mode=PRIVATE)


def open_no_follow(path: Path, flags: int, *, what: str, mode: int = PUBLIC) -> int:
    """``os.open(path, flags | O_NOFOLLOW | O_CLOEXEC)``; a symbolic link there is
    invalid input (exit 2), any other failure an operation that failed."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UsageError(
                f"{path}: the {what} is a symbolic link, and swarmai does not follow one "
                f"there (it could point at any file swarmai may write); replace it with a "
                f"plain file or point the setting at another path") from None
        raise OperationError(f"cannot open the {what} {path}: "
                             f"{error.strerror or error}") from None


def inside(directory: Path, name: str, *, source: str) -> Path:
    """``directory / name``, refused (exit 2) when it leads out of ``directory``:
    an absolute name, a ``..``, or a folder on the way that links elsewhere.
    ``source`` says where the name came from, for the message."""
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise UsageError(f"{source}: {name!r} is not a path inside {directory}; "
                         f"remove it from {source}")
    path = directory / relative
    base = directory.resolve()
    if not path.parent.resolve().is_relative_to(base):
        raise UsageError(f"{source}: {name!r} leads out of {directory} through a symbolic "
                         f"link ({path.parent} -> {path.parent.resolve()}); remove the link")
    return path


def _written_aside(path: Path, text: str, mode: int) -> str:
    """A temporary file beside ``path`` holding ``text``, on disk, mode ``mode``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as error:
        raise _cannot_write(path, error) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())  # on disk before any name points at it
    except OSError as error:
        _discard(temporary)
        raise _cannot_write(path, error) from None
    return temporary


def _sync_folder(folder: Path) -> None:
    """Put the rename itself on disk (best effort: not every file system can)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _discard(temporary: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)


def _cannot_write(path: Path, error: OSError) -> OperationError:
    return OperationError(f"cannot write {path}: {error.strerror or error}")
