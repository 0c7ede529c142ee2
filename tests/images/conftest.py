"""Fixtures for the image-tag tests: private copies of the build contexts and source.

The tests edit files and expect tags to move; they edit copies, never the
package, by pointing the modules at the copies.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from swarmai.images import catalog, source


@pytest.fixture
def contexts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the build contexts that the catalog reads instead of the package's."""
    copy = tmp_path / "contexts"
    shutil.copytree(catalog.CONTEXTS, copy)
    monkeypatch.setattr(catalog, "CONTEXTS", copy)
    return copy


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of swarmai's source tree (package + pyproject.toml) the images are built from."""
    root = tmp_path / "checkout"
    shutil.copytree(source.PACKAGE, root / "swarmai",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(source.ROOT / "pyproject.toml", root / "pyproject.toml")
    monkeypatch.setattr(source, "PACKAGE", root / "swarmai")
    monkeypatch.setattr(source, "ROOT", root)
    return root
