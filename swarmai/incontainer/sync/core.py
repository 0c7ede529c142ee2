"""One sync pass: resolve the URI, fetch the version once, lay it out, mark it.

Everything that talks to the outside is a parameter (the MLflow client, the
artifact downloader, the archiver), so tests drive a pass against a fake
registry and fake artifacts, and the runner supplies the real ones.  A pass
never removes what the last good pass published: it fails before touching the
store, or it publishes a complete new version first and prunes after.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from swarmai import modeluri
from swarmai.incontainer.resolve import ModelVersionInfo, RegistryError, resolve
from swarmai.incontainer.server.loader import Downloader, ModelCache
from swarmai.incontainer.sync.archiver import Archiver, command_archiver
from swarmai.incontainer.sync.config import SyncSettings
from swarmai.incontainer.sync.errors import SyncError
from swarmai.incontainer.sync.store import read_marker, utc_now, write_marker
from swarmai.incontainer.sync.tfserving import TfServingLayout
from swarmai.incontainer.sync.torchserve import TorchServeLayout

log = logging.getLogger(__name__)


class RuntimeLayout(Protocol):
    """How one runtime wants a model version laid out in its store."""

    def present(self, store: Path, name: str, version: str, source: str) -> Path | None: ...

    def lay_out(self, artifacts_dir: Path, store: Path, name: str, version: str,
                source: str) -> Path: ...

    def prune(self, store: Path, name: str, version: str) -> list[Path]: ...


@dataclass(frozen=True)
class SyncResult:
    """What a pass did: the version now published, or why it failed."""

    uri: str
    version: str | None = None
    path: Path | None = None
    changed: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def sync_once(client: Any, settings: SyncSettings, downloader: Downloader,
              archiver: Archiver | None = None) -> SyncResult:
    """Make the store hold the version ``settings.model_uri`` points at now.

    ``client`` needs MlflowClient's two look-ups; ``downloader`` is
    ``mlflow.artifacts.download_artifacts``-shaped; ``archiver`` (TorchServe
    only) defaults to the real torch-model-archiver.
    """
    uri = settings.model_uri
    try:
        info = _resolve(client, uri)
        path, changed = _sync_version(info, settings, downloader, archiver)
    except (RegistryError, SyncError, OSError) as error:
        log.error("sync of %s failed: %s", uri, error)
        return SyncResult(uri, error=str(error))
    return SyncResult(uri, version=info.version, path=path, changed=changed)


def layout_for(settings: SyncSettings, archiver: Archiver | None = None) -> RuntimeLayout:
    """The runtime's layout; the archiver is only built (and needed) for TorchServe."""
    if settings.layout == "tfserving":
        return TfServingLayout(settings.keep_versions)
    return TorchServeLayout(archiver or command_archiver(), settings.archive_version,
                            settings.torchserve_handler)


def _resolve(client: Any, uri: str) -> ModelVersionInfo:
    info = resolve(client, uri)
    if not info.version.isdigit():  # it names a folder TF Serving reads as a number
        raise SyncError(f"MLflow returned a malformed version {info.version!r} for {uri}")
    if info.status != "READY":
        raise SyncError(f"{uri} is version {info.version}, still {info.status} in MLflow")
    return info


def _sync_version(info: ModelVersionInfo, settings: SyncSettings, downloader: Downloader,
                  archiver: Archiver | None) -> tuple[Path, bool]:
    store, name, version = Path(settings.store), settings.model_name, info.version
    source = modeluri.version_uri(info.name, version)
    layout = layout_for(settings, archiver)
    current = _marked(store, settings, source)
    found = layout.present(store, name, version, source) if current else None
    if found is not None:
        log.debug("%s is %s, already laid out at %s", settings.model_uri, source, found)
        # Also when nothing changed: a pass killed between publishing a version
        # and pruning may have left a folder that shadows the current one.
        layout.prune(store, name, version)
        return found, False
    log.info("%s resolves to %s; laying it out for %s", settings.model_uri, source,
             settings.layout)
    local = ModelCache(settings.cache_dir, _checked(downloader)).fetch(info.name, version)
    path = layout.lay_out(local, store, name, version, source)
    _mark(store, settings, info, source, path)
    layout.prune(store, name, version)
    return path, True


def _marked(store: Path, settings: SyncSettings, source: str) -> bool:
    """Whether the marker already records ``source`` for this model and runtime."""
    marker = read_marker(store) or {}
    expected = {"source": source, "name": settings.model_name, "layout": settings.layout}
    return all(marker.get(key) == value for key, value in expected.items())


def _mark(store: Path, settings: SyncSettings, info: ModelVersionInfo, source: str,
          path: Path) -> None:
    write_marker(store, {
        "uri": settings.model_uri,
        "name": settings.model_name,
        "version": info.version,
        "layout": settings.layout,
        "synced_at": utc_now(),
        "source": source,
        "path": path.relative_to(store).as_posix(),
    })  # fmt: skip
    log.info("marked %s as synced to %s", store, source)


def _checked(downloader: Downloader) -> Downloader:
    """The downloader, with MLflow's exceptions turned into one-line SyncErrors."""

    def download(artifact_uri: str, dst_path: str) -> str:
        try:
            return downloader(artifact_uri, dst_path)
        except Exception as error:  # MLflow raises MlflowException, OSError, HTTP errors
            raise SyncError(f"download of {artifact_uri} failed: {_first_line(error)}") from None

    return download


def _first_line(error: Exception) -> str:
    message = str(getattr(error, "message", None) or error).strip()
    return message.splitlines()[0] if message else type(error).__name__
