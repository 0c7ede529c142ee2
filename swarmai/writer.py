"""Write a rendered :class:`~swarmai.render.Bundle` to a directory, safely.

Only files whose content changed are rewritten (atomically), so re-rendering
an unchanged stack touches nothing.  A manifest remembers what swarmai wrote,
so files a later render no longer produces are removed, and files swarmai did
not write are never touched; a manifest naming a path outside the directory
(edited by hand, or planted) is refused before anything is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from swarmai.files import inside, write_atomically
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
    stale = {relative: inside(directory, relative, source=str(directory / MANIFEST))
             for relative in sorted(previous - set(bundle.files))}
    for relative, text in bundle.files.items():
        target = inside(directory, relative, source="the rendered bundle")
        current = target.read_text("utf-8") if target.is_file() else None
        if current == text:
            report.unchanged.append(relative)
            continue
        (report.created if current is None else report.changed).append(relative)
        if not dry_run:
            write_atomically(target, text)
    for relative, path in stale.items():
        report.removed.append(relative)
        if not dry_run:
            path.unlink(missing_ok=True)
    if not dry_run:
        write_atomically(directory / MANIFEST, json.dumps(sorted(bundle.files), indent=1) + "\n")
    return report


def _read_manifest(directory: Path) -> set[str]:
    path = directory / MANIFEST
    if not path.is_file():
        return set()
    try:
        names = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return set()  # an unreadable manifest only means nothing is pruned
    return {n for n in names if isinstance(n, str)}
