"""Shell scripts swarmai mounts into third-party images as configs.

They ship as package data so they can be read, linted and tested as files; they
are constant, so loading them keeps the renderers free of side effects.
"""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def script(name: str) -> str:
    """The text of ``scripts/<name>`` in this package."""
    return resources.files("swarmai.render").joinpath("scripts").joinpath(name).read_text("utf-8")
