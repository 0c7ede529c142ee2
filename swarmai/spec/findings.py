"""A cross-field problem, located by its YAML path (shared by the check modules)."""

from __future__ import annotations

from dataclasses import dataclass

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Finding:
    loc: Loc
    message: str
    hint: str = ""
