"""Fixtures for the image-tag tests: private copies of the build contexts and source.

The tests edit files and expect tags to move; they edit copies, never the
package or the asset folders, by pointing the modules at the copies.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from swarmai.images import catalog, source


@pytest.fixture
def contexts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of every build context (``<copy>/<image name>``, and ``shared``) read instead."""
    copy = tmp_path / "contexts"
    for name in [*catalog.BY_NAME, "shared"]:
        shutil.copytree(catalog.context_dir(name), copy / name)
    monkeypatch.setattr(catalog, "context_dir", lambda name: copy / name)
    return copy


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the swarmai package the images are built from."""
    root = tmp_path / "checkout"
    shutil.copytree(source.PACKAGE, root / "swarmai",
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(source, "PACKAGE", root / "swarmai")
    return root
