"""``swarmai backup`` / ``restore``: a stack's registry (database, artifacts) to a folder and back.

Consistency: the database is dumped first, then the bucket mirrored.  MLflow
writes a version's artifacts before it registers the version, and never
changes them afterwards, so every artifact the dump references is already in
the bucket when the mirror starts; objects written later are extra, never
missing.  The registry's contents are read through MLflow before and after the
dump, and a backup during which they changed is refused (run it again).

A snapshot is built in ``<stack>-<UTC time>.partial`` beside its final name and
renamed only when whole, so an interrupted backup leaves nothing that looks
complete.  A restore checks every checksum, the stack's database kind and that
the registry is empty (unless ``replace``) before it changes anything; loading
the database is one transaction and uploading is idempotent, so re-running a
restore is safe.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from swarmai import __version__
from swarmai.engine import ensure_image
from swarmai.errors import OperationError, UsageError
from swarmai.files import write_atomically
from swarmai.lifecycle.backend import Backend
from swarmai.lifecycle.backup_manifest import (
    MANIFEST,
    differences,
    manifest_text,
    read_manifest,
)
from swarmai.lifecycle.backup_tasks import (
    ARTIFACT_INDEX,
    POSTGRES_VERSION,
    WRONG_MAJOR,
    TaskImages,
    database_file,
    dump_task,
    load_task,
    mirror_task,
)
from swarmai.lifecycle.steps import Progress, registry_target, with_images
from swarmai.lifecycle.tasks import Task, TaskResult
from swarmai.registry_client import RegistryClient, RegistrySummary, registry_summary
from swarmai.render.naming import model_service
from swarmai.spec import Stack, image_for


@dataclass
class RestoreReport:
    counts: dict[str, int]
    restarted: list[str] = field(default_factory=list)
    not_running: list[str] = field(default_factory=list)  # model services to deploy yet


def backup(backend: Backend, stack: Stack, destination: Path, *, offline: bool,
           progress: Progress) -> Path:
    """Snapshot ``stack``'s registry into a new folder under ``destination``; its path.

    Raises OperationError when a container fails or the registry changes meanwhile.
    """
    images = _images(backend, stack, offline)
    registry = RegistryClient(backend.engine, registry_target(stack, offline=offline))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    final = destination.resolve() / f"{stack.name}-{stamp}"
    partial = final.with_name(final.name + ".partial")
    if final.exists():
        raise UsageError(f"{final} exists already; wait a second and run again")
    partial.mkdir(parents=True, exist_ok=True)
    try:
        _snapshot(backend, stack, registry, images, partial, progress)
    except BaseException:
        # A failed or interrupted backup leaves nothing behind (not even a .partial).
        shutil.rmtree(partial, ignore_errors=True)
        raise
    partial.rename(final)
    return final


def _snapshot(backend: Backend, stack: Stack, registry: RegistryClient, images: TaskImages,
              partial: Path, progress: Progress) -> None:
    """Database first, then the bucket (see the module's note), then the manifest."""
    before = registry.summary()
    progress(f"dumping the registry database ({stack.registry.backend_store})")
    _run(backend, stack, dump_task(stack, images, partial))
    after = registry.summary()
    if differences(before, after):
        raise OperationError("the registry changed during the backup ("
                             + "; ".join(differences(before, after)) + "); run it again")
    progress(f"mirroring bucket {stack.storage.bucket}")
    _run(backend, stack, mirror_task(stack, images, partial, "download"))
    objects = json.loads((partial / ARTIFACT_INDEX).read_text(encoding="utf-8"))
    write_atomically(partial / MANIFEST, manifest_text(
        stack=stack.name, created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        backend_store=stack.registry.backend_store, postgres_major=_major(partial, stack),
        images={"postgres": images.postgres, "mlflow": images.mlflow},
        version=__version__, database=partial / database_file(stack),
        bucket=stack.storage.bucket, objects=objects, summary=after))


def restore(backend: Backend, stack: Stack, source: Path, *, replace: bool, offline: bool,
            timeout_s: float, progress: Progress) -> RestoreReport:
    """Load snapshot ``source`` into ``stack``'s registry, check it, roll the model servers."""
    source = source.resolve()
    progress(f"checking {source}")
    manifest = read_manifest(source)
    _check_kind(stack, manifest, source)
    expected = registry_summary(manifest["registry"])
    registry = RegistryClient(backend.engine, registry_target(stack, offline=offline))
    present = registry.summary()
    if present.models and not replace:
        raise UsageError(
            f"the registry of stack {stack.name} is not empty ({len(present.models)} "
            "registered models); nothing was changed. Pass --replace to overwrite it with "
            "the snapshot")
    images = _images(backend, stack, offline)
    progress("restoring the registry database")
    result = backend.run_task(stack, load_task(stack, images, source,
                                               manifest.get("postgres_major")))
    if result.return_code == WRONG_MAJOR and stack.registry.backend_store == "postgres":
        raise UsageError(f"{source / MANIFEST}: {result.stderr.strip()}; nothing was changed. "
                         "Restore into a stack whose images.postgres has the snapshot's major "
                         f"({manifest['images'].get('postgres')}), then upgrade it")
    _check(load_task(stack, images, source, None), result)
    progress(f"uploading {len(manifest['artifacts']['objects'])} artifacts")
    _run(backend, stack, mirror_task(stack, images, source, "upload"))
    _verify(registry.summary(), expected)
    return _roll(backend, stack, expected, timeout_s, progress)


def _check_kind(stack: Stack, manifest: dict[str, Any], source: Path) -> None:
    kind = manifest.get("backend_store")
    if kind != stack.registry.backend_store:
        raise UsageError(
            f"{source / MANIFEST}: the snapshot's registry database is {kind}, stack "
            f"{stack.name}'s is {stack.registry.backend_store}; restore it into a stack with "
            f"registry.backend_store: {kind}")


def _verify(found: RegistrySummary, expected: RegistrySummary) -> None:
    problems = differences(expected, found)
    if problems:
        raise OperationError("after the restore the registry differs from the snapshot:\n  "
                             + "\n  ".join(problems))


def _roll(backend: Backend, stack: Stack, expected: RegistrySummary, timeout_s: float,
          progress: Progress) -> RestoreReport:
    """Restart each running model server, so it loads what its alias now points at."""
    report = RestoreReport(expected.counts())
    running = {row.service for row in backend.rows(stack)}
    for model in stack.models:
        service = model_service(model)
        if service not in running:
            report.not_running.append(service)
            continue
        progress(f"restarting {service}")
        backend.restart(stack, service, timeout_s=timeout_s, progress=progress)
        report.restarted.append(service)
    return report


def _images(backend: Backend, stack: Stack, offline: bool) -> TaskImages:
    stacked = with_images(stack, offline=offline).images
    images = TaskImages(postgres=image_for(stacked, "postgres"),
                        mlflow=image_for(stacked, "mlflow"))
    needed = [images.mlflow]
    if stack.registry.backend_store == "postgres":
        needed.append(images.postgres)
    for image in needed:
        if not ensure_image(backend.engine, image):
            raise OperationError(f"image {image} is not on this node; run `swarmai images "
                                 "build` (with --offline if you deploy with it)")
    return images


def _major(folder: Path, stack: Stack) -> int | None:
    if stack.registry.backend_store != "postgres":
        return None
    return int((folder / POSTGRES_VERSION).read_text(encoding="utf-8").strip()) // 10000


def _run(backend: Backend, stack: Stack, task: Task) -> None:
    _check(task, backend.run_task(stack, task))


def _check(task: Task, result: TaskResult) -> None:
    if result.return_code != 0:
        raise OperationError(f"{task.what} failed", command=[task.image, task.command[0]],
                             return_code=result.return_code,
                             stderr=(result.stderr or result.stdout)[-2000:])

