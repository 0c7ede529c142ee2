"""Shell scripts swarmai mounts into third-party images as configs.

They are the registry's entrypoints (``registry/entrypoints/``), kept as files so
they can be read, linted and tested as such; they are constant, so loading them
keeps the renderers free of side effects.  A line ``# swarmai-include: FILE`` in
a script is replaced by ``FILE`` from the same folder, from its first blank line
on (what comes before is that file's own header): so the MLflow entrypoint's
bucket bootstrap is a Python file of its own, yet the service still gets one
self-contained script.
"""

from __future__ import annotations

import re
from functools import cache

from swarmai import assets

FOLDER = "entrypoints"
_INCLUDE = re.compile(r"^# swarmai-include: (?P<name>[\w.-]+)\n", re.MULTILINE)


@cache
def script(name: str) -> str:
    """The text of ``registry/entrypoints/<name>``, with its includes inlined."""
    return _INCLUDE.sub(lambda match: _body(match["name"]), _read(name))


def _body(name: str) -> str:
    _header, blank, body = _read(name).partition("\n\n")
    if not blank:
        raise ValueError(f"{FOLDER}/{name} has no header: it must end with a blank line")
    return body


def _read(name: str) -> str:
    return assets.read_text("registry", f"{FOLDER}/{name}")
