"""How the server gets its model: resolve the model URI in MLflow, cache it, load it.

MLflow is imported lazily, inside :func:`mlflow_loader`'s closure, so that the
rest of the server (and its unit tests) never pay for or depend on it.  The
steps are plain functions over small protocols, so tests inject a fake client,
downloader or pyfunc loader instead of a registry.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from swarmai import modeluri
from swarmai.incontainer.server.config import ConfigError, Settings
from swarmai.modeluri import ModelUri

if TYPE_CHECKING:  # numpy: model-sync uses this module's cache and has no numpy
    from swarmai.incontainer.server.fastpath import ArrayPath

log = logging.getLogger(__name__)

# Written last inside a downloaded model directory, before the rename that
# publishes it; a directory without it is not trusted.
COMPLETE_MARKER = ".swarmai-complete"


class Predictor(Protocol):
    """The one method the server needs; ``mlflow.pyfunc.PyFuncModel`` fits."""

    def predict(self, data: Any, /) -> Any: ...


class RegistryClient(Protocol):
    """The two lookups of ``mlflow.MlflowClient`` that resolve a URI."""

    def get_model_version_by_alias(self, name: str, alias: str) -> Any: ...

    def get_model_version(self, name: str, version: str) -> Any: ...


# (artifact_uri, dst_path) -> local directory, like mlflow.artifacts.download_artifacts.
Downloader = Callable[[str, str], str]
# local directory -> model, like mlflow.pyfunc.load_model.
PyfuncOpener = Callable[[str], Predictor]


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to predict, with the registry version it came from."""

    model: Predictor
    registered_name: str
    version: str
    # Numeric tables straight into the estimator, where that answers the same.
    array_path: ArrayPath | None = None


# What the server calls (in a thread) to get its model; tests pass their own.
ModelLoader = Callable[[], LoadedModel]


def parse_model_uri(uri: str) -> ModelUri:
    """Split a registry URI into name and alias or version."""
    found = modeluri.match(uri)
    if found is None:
        raise ConfigError(
            f"MODEL_URI={uri!r} is not a registry model URI (write {modeluri.GRAMMAR})"
        )
    return found


def resolve_version(client: RegistryClient, ref: ModelUri) -> str:
    """The concrete version ``ref`` points at now (an alias may move later)."""
    if ref.alias is not None:
        found = client.get_model_version_by_alias(ref.name, ref.alias)
    else:
        assert ref.version is not None  # parse_model_uri guarantees one of the two
        found = client.get_model_version(ref.name, str(ref.version))
    version = str(found.version)
    if not version.isdigit():
        raise ValueError(f"registry returned a malformed version {version!r} for {ref.name}")
    return version


class ModelCache:
    """Model directories on local disk, keyed ``<name>/<version>``.

    A registered version is immutable, so a complete directory is reused
    forever: a restarted or rescheduled container on the same node (with the
    cache on a volume) downloads nothing.
    """

    def __init__(self, root: str | Path, download: Downloader) -> None:
        self.root = Path(root)
        self._download = download

    def path_for(self, name: str, version: str) -> Path:
        return self.root / name / version

    def fetch(self, name: str, version: str) -> Path:
        """Return the local copy of ``name``/``version``, downloading it at most once."""
        final = self.path_for(name, version)
        if (final / COMPLETE_MARKER).is_file():
            log.info("model %s/%s found in cache %s", name, version, final)
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        # The scratch directory sits beside the target so the rename is atomic.
        scratch = tempfile.mkdtemp(prefix=f".{version}.partial-", dir=final.parent)
        try:
            uri = modeluri.version_uri(name, version)
            log.info("downloading %s into %s", uri, final)
            local = Path(self._download(uri, scratch))
            (local / COMPLETE_MARKER).write_text(f"{uri}\n")
            self._publish(local, final)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return final

    @staticmethod
    def _publish(local: Path, final: Path) -> None:
        if final.exists() and not (final / COMPLETE_MARKER).is_file():
            shutil.rmtree(final)  # left by something other than us; not trusted
        try:
            os.rename(local, final)
        except OSError:
            # Another replica sharing the cache volume published first: use theirs.
            if not (final / COMPLETE_MARKER).is_file():
                raise


def load_model(
    ref: ModelUri, client: RegistryClient, cache: ModelCache, open_model: PyfuncOpener
) -> LoadedModel:
    """Resolve ``ref``, fetch it into ``cache`` and open it."""
    from swarmai.incontainer.server.fastpath import array_path

    version = resolve_version(client, ref)
    local = cache.fetch(ref.name, version)
    model = open_model(str(local))
    fast = array_path(model)
    log.info("loaded %s as %s version %s%s", ref, ref.name, version,
             "; numeric tables of its own columns skip pandas" if fast else "")
    return LoadedModel(model=model, registered_name=ref.name, version=version,
                       array_path=fast)


def mlflow_loader(settings: Settings) -> ModelLoader:
    """The production loader: the real MLflow client, downloader and pyfunc."""
    ref = parse_model_uri(settings.model_uri)

    def load() -> LoadedModel:
        import mlflow
        import mlflow.artifacts
        import mlflow.pyfunc
        from mlflow import MlflowClient

        tracking = settings.tracking_uri
        if tracking:
            # MLflow's models:/ artifact repository resolves the version through
            # the *global* registry URI, ignoring download_artifacts' tracking_uri
            # argument.  This process serves one model, so a global is harmless.
            mlflow.set_tracking_uri(tracking)

        def download(artifact_uri: str, dst_path: str) -> str:
            return mlflow.artifacts.download_artifacts(
                artifact_uri=artifact_uri, dst_path=dst_path, tracking_uri=tracking
            )

        client = MlflowClient(tracking_uri=tracking)
        cache = ModelCache(settings.cache_dir, download)
        return load_model(ref, client, cache, mlflow.pyfunc.load_model)

    return load

