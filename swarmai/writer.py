"""Write a rendered :class:`~swarmai.render.Bundle` to a directory, safely.

Only files whose content changed are rewritten (atomically), so re-rendering
an unchanged stack touches nothing.  A manifest remembers what swarmai wrote,
so files a later render no longer produces are removed, and files swarmai did
not write are never touched.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from swarmai.errors import OperationError
from swarmai.render import Bundle

MANIFEST = ".swarmai-rendered.json"


@dataclass
class WriteReport:
    directory: Path
    created: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def write_bundle(bundle: Bundle, directory: Path, *, dry_run: bool = False) -> WriteReport:
    """Bring ``directory`` in line with ``bundle``; with ``dry_run`` only report."""
    report = WriteReport(directory)
    previous = _read_manifest(directory)
    for relative, text in bundle.files.items():
        target = directory / relative
        current = target.read_text("utf-8") if target.is_file() else None
        if current == text:
            report.unchanged.append(relative)
            continue
        (report.created if current is None else report.changed).append(relative)
        if not dry_run:
            _write_atomically(target, text)
    for relative in sorted(previous - set(bundle.files)):
        report.removed.append(relative)
        if not dry_run:
            (directory / relative).unlink(missing_ok=True)
    if not dry_run:
        _write_atomically(directory / MANIFEST, json.dumps(sorted(bundle.files), indent=1) + "\n")
    return report


def _read_manifest(directory: Path) -> set[str]:
    path = directory / MANIFEST
    if not path.is_file():
        return set()
    try:
        names = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return set()  # an unreadable manifest only means nothing is pruned
    return {n for n in names if isinstance(n, str) and ".." not in Path(n).parts}


def _write_atomically(target: Path, text: str) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except OSError as error:
        raise OperationError(f"cannot write {target}: {error.strerror or error}") from None
