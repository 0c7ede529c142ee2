"""Backup and restore over a fake backend and registry: what runs, in which order, and
what a restore refuses before it changes anything."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

from swarmai.errors import OperationError, SpecError, UsageError
from swarmai.lifecycle import backup as backup_module
from swarmai.lifecycle.backup import backup, restore
from swarmai.lifecycle.backup_manifest import differences, read_manifest, sha256_of
from swarmai.lifecycle.status import ServiceStatus
from swarmai.lifecycle.tasks import Task, TaskResult
from swarmai.registry_client import RegistrySummary, registry_summary
from swarmai.spec import Stack, load_stack

SUMMARY = registry_summary({"models": {
    "iris": {"versions": {"1": {"tags": {}}, "2": {"tags": {"swarmai.content_sha256": "ab"}}},
             "aliases": {"production": "1", "staging": "2"},
             "tags": {"swarmai.canary.production": '{"percent": 25, "version": "2"}'}}}})
EMPTY = RegistrySummary({})


class FakeRegistry:
    answers: ClassVar[list[RegistrySummary]] = []

    def __init__(self, *_: Any) -> None:
        pass

    def summary(self) -> RegistrySummary:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@dataclass
class FakeBackend:
    """Runs each task by doing on the host what its container would."""

    engine: Any = None
    tasks: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    results: dict[str, TaskResult] = field(default_factory=dict)
    running: tuple[str, ...] = ("model-iris",)

    def run_task(self, stack: Stack, task: Task) -> TaskResult:
        self.tasks.append(task.what)
        folder = task.mounts[0].source
        if task.what == "dumping the registry database":
            (folder / "registry.dump").write_bytes(b"PGDMP...")
            (folder / "postgres-version").write_text("150010\n")
        elif task.what == "mirroring the artifact bucket":
            (folder / "artifacts" / "1").mkdir(parents=True)
            (folder / "artifacts" / "1" / "model.pkl").write_bytes(b"model")
            (folder / "artifacts.json").write_text(json.dumps([{
                "key": "1/model.pkl", "size": 5,
                "sha256": sha256_of(folder / "artifacts" / "1" / "model.pkl")}]))
        return self.results.get(task.what, TaskResult(0, "", ""))

    def rows(self, stack: Stack) -> list[ServiceStatus]:
        return [ServiceStatus(name, 1, 1, True, (), "", "img") for name in self.running]

    def restart(self, stack: Stack, service: str, *, timeout_s: float, progress: Any) -> None:
        self.restarted.append(service)


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Stack:
    monkeypatch.setattr(backup_module, "RegistryClient", FakeRegistry)
    monkeypatch.setattr(backup_module, "ensure_image", lambda engine, image: True)
    path = tmp_path / "demo.yaml"
    path.write_text("""version: 1
name: demo
storage: {backend: seaweedfs, bucket: models, credentials_secret: demo-s3}
registry: {backend_store: postgres, db_password_secret: demo-db}
models:
  - name: iris
    runtime: fastapi
    model: models:/iris@production
""")
    return load_stack(path, "swarm")


def snapshot(stack: Stack, tmp_path: Path) -> Path:
    FakeRegistry.answers = [SUMMARY]
    backend = FakeBackend()
    made = backup(backend, stack, tmp_path / "backups", offline=True,  # type: ignore[arg-type]
                  progress=lambda line: None)
    assert backend.tasks == ["dumping the registry database", "mirroring the artifact bucket"]
    return made


def test_a_backup_dumps_first_then_mirrors_and_writes_a_whole_manifest(
        stack: Stack, tmp_path: Path) -> None:
    made = snapshot(stack, tmp_path)
    assert made.name.startswith("demo-") and not made.name.endswith(".partial")
    manifest = read_manifest(made)
    assert manifest["stack"] == "demo" and manifest["postgres_major"] == 15
    assert manifest["database"]["file"] == "registry.dump"
    assert manifest["counts"] == {"models": 1, "versions": 2, "aliases": 2, "tags": 1}
    assert registry_summary(manifest["registry"]) == SUMMARY


def test_a_failed_backup_leaves_nothing_behind(stack: Stack, tmp_path: Path) -> None:
    FakeRegistry.answers = [SUMMARY]
    backend = FakeBackend(results={"mirroring the artifact bucket": TaskResult(1, "", "no")})
    with pytest.raises(OperationError, match="mirroring the artifact bucket failed"):
        backup(backend, stack, tmp_path / "b", offline=True,  # type: ignore[arg-type]
               progress=lambda line: None)
    assert list((tmp_path / "b").iterdir()) == []


def test_a_registry_changed_during_the_dump_is_refused(stack: Stack, tmp_path: Path) -> None:
    FakeRegistry.answers = [EMPTY, SUMMARY]
    with pytest.raises(OperationError, match="changed during the backup"):
        backup(FakeBackend(), stack, tmp_path / "b", offline=True,  # type: ignore[arg-type]
               progress=lambda line: None)


def test_restore_loads_uploads_checks_and_rolls_the_running_servers(
        stack: Stack, tmp_path: Path) -> None:
    made = snapshot(stack, tmp_path)
    FakeRegistry.answers = [EMPTY, SUMMARY]
    backend = FakeBackend()
    report = restore(backend, stack, made, replace=False, offline=True,  # type: ignore[arg-type]
                     timeout_s=60, progress=lambda line: None)
    assert backend.tasks == ["restoring the registry database", "uploading the artifacts"]
    assert backend.restarted == ["model-iris"] and report.counts["versions"] == 2


def test_restore_refuses_a_non_empty_registry_and_runs_nothing(
        stack: Stack, tmp_path: Path) -> None:
    made = snapshot(stack, tmp_path)
    FakeRegistry.answers = [SUMMARY]
    backend = FakeBackend()
    with pytest.raises(UsageError, match="--replace"):
        restore(backend, stack, made, replace=False, offline=True,  # type: ignore[arg-type]
                timeout_s=60, progress=lambda line: None)
    assert backend.tasks == []


def test_restore_refuses_a_corrupt_artifact_naming_it(stack: Stack, tmp_path: Path) -> None:
    made = snapshot(stack, tmp_path)
    (made / "artifacts" / "1" / "model.pkl").write_bytes(b"other")
    backend = FakeBackend()
    with pytest.raises(SpecError, match=r"model\.pkl: does not match the sha256") as raised:
        restore(backend, stack, made, replace=True, offline=True,  # type: ignore[arg-type]
                timeout_s=60, progress=lambda line: None)
    assert raised.value.exit_code == 2 and backend.tasks == []


def test_restore_refuses_another_database_kind(stack: Stack, tmp_path: Path) -> None:
    made = snapshot(stack, tmp_path)
    manifest = json.loads((made / "manifest.json").read_text())
    (made / "manifest.json").write_text(json.dumps({**manifest, "backend_store": "sqlite"}))
    with pytest.raises(UsageError, match=r"registry\.backend_store: sqlite"):
        restore(FakeBackend(), stack, made, replace=True, offline=True,  # type: ignore[arg-type]
                timeout_s=60, progress=lambda line: None)


def test_restore_refuses_another_postgres_major_as_bad_input(
        stack: Stack, tmp_path: Path) -> None:
    made = snapshot(stack, tmp_path)
    FakeRegistry.answers = [EMPTY]
    backend = FakeBackend(results={"restoring the registry database": TaskResult(
        3, "", "the stack's PostgreSQL is major 16, the snapshot's 15")})
    with pytest.raises(UsageError, match="major 16, the snapshot's 15"):
        restore(backend, stack, made, replace=False, offline=True,  # type: ignore[arg-type]
                timeout_s=60, progress=lambda line: None)
    assert backend.tasks == ["restoring the registry database"]


def test_a_restore_that_does_not_bring_everything_back_fails_naming_it(
        stack: Stack, tmp_path: Path) -> None:
    made = snapshot(stack, tmp_path)
    FakeRegistry.answers = [EMPTY, EMPTY]
    with pytest.raises(OperationError, match="model iris is missing"):
        restore(FakeBackend(), stack, made, replace=False, offline=True,  # type: ignore[arg-type]
                timeout_s=60, progress=lambda line: None)


def test_differences_name_each_model_and_field() -> None:
    moved = registry_summary({"models": {
        "iris": {"versions": {"1": {"tags": {}}, "2": {"tags": {"swarmai.content_sha256": "ab"}}},
                 "aliases": {"production": "2", "staging": "2"}, "tags": {}},
        "extra": {"versions": {}, "aliases": {}, "tags": {}}}})
    found = differences(SUMMARY, moved)
    assert any(line.startswith("model iris: aliases") for line in found)
    assert any(line.startswith("model iris: tags") for line in found)
    assert "model extra is not in the snapshot" in found
    assert differences(SUMMARY, SUMMARY) == []
