"""Fakes for the model-sync tests: a registry in memory, artifacts on disk.

Helpers are handed out as fixtures (not imported) so the tests do not depend
on how pytest puts test directories on ``sys.path``.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from swarmai.incontainer.sync import ArchiveSpec, SyncSettings


class FakeRegistry:
    """MlflowClient's two look-ups plus a downloader, over directories on disk."""

    def __init__(self) -> None:
        self.versions: dict[tuple[str, str], Path] = {}
        self.aliases: dict[tuple[str, str], str] = {}
        self.downloads: list[str] = []
        self.down = False
        self.status = "READY"

    def add(self, name: str, version: str, artifacts: Path, alias: str | None = None) -> None:
        self.versions[(name, version)] = artifacts
        if alias is not None:
            self.aliases[(name, alias)] = version

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        self._reachable()
        if (name, alias) not in self.aliases:
            raise LookupError(f"Registered model alias {alias} not found.")
        return self.get_model_version(name, self.aliases[(name, alias)])

    def get_model_version(self, name: str, version: str) -> Any:
        self._reachable()
        if (name, version) not in self.versions:
            raise LookupError(f"Model Version (name={name}, version={version}) not found")
        return SimpleNamespace(name=name, version=version, aliases=[], status=self.status)

    def download(self, artifact_uri: str, dst_path: str) -> str:
        """Like mlflow.artifacts.download_artifacts for models:/NAME/VERSION."""
        self._reachable()
        self.downloads.append(artifact_uri)
        name, version = artifact_uri.removeprefix("models:/").split("/")
        shutil.copytree(self.versions[(name, version)], dst_path, dirs_exist_ok=True)
        return dst_path

    def _reachable(self) -> None:
        if self.down:
            raise ConnectionError("API request to http://mlflow:5000 failed: Connection refused")


class FakeArchiver:
    """Writes a zip shaped like a .mar and records every spec it was given."""

    def __init__(self) -> None:
        self.specs: list[ArchiveSpec] = []

    def __call__(self, spec: ArchiveSpec, work_dir: Path) -> Path:
        self.specs.append(spec)
        mar = work_dir / f"{spec.model_name}.mar"
        manifest = {"model": {"modelName": spec.model_name, "modelVersion": spec.version,
                              "serializedFile": spec.serialized_file.name}}
        with zipfile.ZipFile(mar, "w") as archive:
            archive.writestr("MAR-INF/MANIFEST.json", json.dumps(manifest))
            archive.write(spec.serialized_file, spec.serialized_file.name)
        return mar


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def archiver() -> FakeArchiver:
    return FakeArchiver()


@pytest.fixture
def settings(tmp_path: Path) -> Callable[..., SyncSettings]:
    """Settings with the store and cache under tmp_path; keywords override."""

    def make(**overrides: Any) -> SyncSettings:
        fields: dict[str, Any] = {
            "model_uri": "models:/iris@production",
            "model_name": "iris",
            "layout": "tfserving",
            "store": str(tmp_path / "store"),
            "cache_dir": str(tmp_path / "cache"),
        }
        return SyncSettings(**{**fields, **overrides})

    return make


@pytest.fixture
def saved_model(tmp_path: Path) -> Callable[..., Path]:
    """Write a fake SavedModel (saved_model.pb + variables/) at ``subdir`` of a new dir."""
    counter = iter(range(1_000_000))

    def make(subdir: str = "", content: bytes = b"graph", mlmodel: str | None = None) -> Path:
        root = tmp_path / "artifacts" / f"tf{next(counter)}"
        model = root / subdir
        (model / "variables").mkdir(parents=True)
        (model / "saved_model.pb").write_bytes(content)
        (model / "variables" / "variables.index").write_bytes(b"index")
        (model / "variables" / "variables.data-00000-of-00001").write_bytes(b"weights")
        if mlmodel is not None:
            (root / "MLmodel").write_text(mlmodel)
        return root

    return make


@pytest.fixture
def torchscript_file() -> Callable[[Path], Path]:
    """Write a file shaped like torch.jit.save's zip (code/ and constants.pkl), no torch."""

    def make(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        top = path.stem
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(f"{top}/data.pkl", b"pickle")
            archive.writestr(f"{top}/constants.pkl", b"pickle")
            archive.writestr(f"{top}/code/__torch__/model.py", "def forward(self, x): ...")
        return path

    return make


@pytest.fixture
def state_dict_file() -> Callable[[Path], Path]:
    """Write a file shaped like torch.save's zip: a pickle, no code/."""

    def make(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(f"{path.stem}/data.pkl", b"pickle")
            archive.writestr(f"{path.stem}/data/0", b"tensor")
        return path

    return make
