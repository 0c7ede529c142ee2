"""Model versions in MLflow: register (push), list, and check that URIs resolve.

Every function takes an ``mlflow.MlflowClient`` (or anything with the same
methods) as its first argument, so tests can use a local file-backed MLflow
and nothing reaches a server by accident.  ``mlflow`` itself is imported only
inside the functions that log models: the swarmai CLI on the host never needs
it, because these operations run inside a container on the stack's network.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from swarmai import modeluri
from swarmai.incontainer.resolve import (
    ModelVersionInfo,
    RegistryError,
    parse_uri,
    resolve,
    version_info,
)

# Tag on each version swarmai registers: the sha256 of what was pushed, so
# pushing the same model twice reuses its version instead of adding another.
CONTENT_TAG = "swarmai.content_sha256"
# How pushed SavedModels and TorchScript files are laid out in MLflow: the
# model directory holds the model and an MLmodel whose flavor names its format.
SAVED_MODEL = "saved_model.pb"
SAVED_MODEL_DIR = "saved_model"
SAVED_MODEL_FLAVOR = "tf_saved_model"
TORCHSCRIPT_FLAVOR = "torchscript"


@dataclass(frozen=True)
class CheckResult:
    uri: str
    found: bool
    version: str | None = None
    error: str | None = None
    canary: str | None = None  # the version a canary of this alias serves, if one runs
    pending: str | None = None  # the alias's swarmai.pending tag: a promotion not finished

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check(client: Any, uris: list[str]) -> list[CheckResult]:
    """Resolve every URI; report each one instead of stopping at the first miss."""
    results = []
    for uri in uris:
        try:
            info = resolve(client, uri)
        except RegistryError as error:
            results.append(CheckResult(uri, found=False, error=str(error)))
        else:
            canary, pending = _alias_records(client, uri)
            results.append(CheckResult(uri, found=True, version=info.version,
                                       canary=canary, pending=pending))
    return results


def _alias_records(client: Any, uri: str) -> tuple[str | None, str | None]:
    """What swarmai recorded for the alias of ``uri``: the canary's version
    (modeluri.canary_tag) and an unfinished promotion (modeluri.pending_tag)."""
    parsed = parse_uri(uri)
    if parsed.alias is None:
        return None, None
    tags = getattr(client.get_registered_model(parsed.name), "tags", None) or {}
    return (modeluri.canary_version(tags.get(modeluri.canary_tag(parsed.alias))),
            tags.get(modeluri.pending_tag(parsed.alias)) or None)


def push(client: Any, name: str, path: Path, alias: str | None,
         metrics: dict[str, float] | None = None) -> ModelVersionInfo:
    """Register the model at ``path`` as ``name`` (reusing an identical version) and set ``alias``.

    ``path`` is one of:

    * an MLflow model directory (with an ``MLmodel`` file);
    * a TensorFlow SavedModel directory (``saved_model.pb`` + ``variables/``),
      for the tfserving runtime;
    * a TorchScript file (``torch.jit.save``), for the torchserve runtime;
    * a pickle of a scikit-learn estimator or of a plain callable (wrapped as a
      pyfunc), for the fastapi runtime.

    SavedModels and TorchScript files are logged as they are, beside an
    ``MLmodel`` naming their format, which is the layout model-sync
    (``swarmai.incontainer.sync``) turns into what TF Serving and TorchServe load.

    ``metrics`` (an evaluation's results) are logged on the run of a new
    version; promotion policies compare them.
    """
    digest = content_sha256(path)
    version = _version_with_content(client, name, digest)
    if version is None:
        version = _register(client, name, path, digest, metrics or {})
    if alias is not None:
        client.set_registered_model_alias(name, alias, version)
    return version_info(client.get_model_version(name, version))


def list_versions(client: Any) -> list[ModelVersionInfo]:
    """Every version of every registered model, newest first within a model."""
    found: list[ModelVersionInfo] = []
    for model in client.search_registered_models():
        # Version search results carry no aliases; the registered model has them all.
        aliases: dict[str, list[str]] = {}
        for alias, version in (getattr(model, "aliases", None) or {}).items():
            aliases.setdefault(str(version), []).append(alias)
        versions = client.search_model_versions(f"name='{model.name}'")
        for version in sorted(versions, key=lambda v: -int(v.version)):
            info = version_info(version)
            found.append(ModelVersionInfo(info.name, info.version,
                                          tuple(sorted(aliases.get(info.version, []))),
                                          info.status))
    return found


def content_sha256(path: Path) -> str:
    """A digest of a file, or of a directory's relative paths and file contents."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _version_with_content(client: Any, name: str, digest: str) -> str | None:
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except Exception:
        return None  # not registered yet
    for version in versions:
        if version.tags.get(CONTENT_TAG) == digest:
            return str(version.version)
    return None


def _register(client: Any, name: str, path: Path, digest: str,
              metrics: dict[str, float]) -> str:
    import mlflow

    with mlflow.start_run(run_name=f"swarmai push {name}"):
        model_uri = _log_model(path)
        if metrics:
            mlflow.log_metrics(metrics)
    registered = mlflow.register_model(model_uri, name, tags={CONTENT_TAG: digest})
    return str(registered.version)


def _log_model(path: Path) -> str:
    import mlflow

    if path.is_dir() and not (path / "MLmodel").is_file() and (path / SAVED_MODEL).is_file():
        return _log_wrapped(path, SAVED_MODEL_DIR, SAVED_MODEL_FLAVOR,
                            {"saved_model_dir": SAVED_MODEL_DIR})
    if path.is_dir():
        if not (path / "MLmodel").is_file():
            raise RegistryError(
                f"{path} is a directory without an MLmodel file (nor a TensorFlow "
                f"SavedModel: no {SAVED_MODEL})")
        return _log_directory(path)
    if _is_torchscript(path):
        filename = path.name if path.suffix in (".pt", ".pth") else "model.pt"
        return _log_wrapped(path, filename, TORCHSCRIPT_FLAVOR, {"model_file": filename})
    obj = _unpickle(path)
    if type(obj).__module__.startswith("sklearn"):
        # cloudpickle, not MLflow's newer skops default: skops is not installed
        # in the server image, and the pickle came from a trusted pusher anyway.
        info = mlflow.sklearn.log_model(obj, name="model", serialization_format="cloudpickle")
        return str(info.model_uri)
    if callable(obj):
        wrapped = _callable_model(obj)
        return str(mlflow.pyfunc.log_model(name="model", python_model=wrapped).model_uri)
    raise RegistryError(f"{path}: a {type(obj).__name__} is neither an estimator nor callable")


def _log_directory(path: Path) -> str:
    """Log a directory's files as the run's ``model`` artifacts; their runs:/ URI."""
    import mlflow

    mlflow.log_artifacts(str(path), artifact_path="model")
    run = mlflow.active_run()
    assert run is not None
    return f"runs:/{run.info.run_id}/model"


def _log_wrapped(path: Path, target: str, flavor: str, params: dict[str, str]) -> str:
    """Log ``path`` as ``model/<target>`` beside an ``MLmodel`` declaring ``flavor``.

    The flavor names the format only (no MLflow loader exists for it): the
    model is for a serving runtime, found by model-sync, not for ``mlflow.pyfunc``.
    """
    import shutil
    import tempfile

    from mlflow.models import Model

    with tempfile.TemporaryDirectory(prefix="swarmai-push-") as tmp:
        staged = Path(tmp) / "model"
        staged.mkdir()
        if path.is_dir():
            shutil.copytree(path, staged / target)
        else:
            shutil.copyfile(path, staged / target)
        model = Model(artifact_path="model")
        model.add_flavor(flavor, **params)
        model.save(str(staged / "MLmodel"))
        return _log_directory(staged)


def _is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a ``torch.jit.save`` archive (without importing torch)."""
    # Imported here: the layout code is only needed for a file that may be one.
    from swarmai.incontainer.sync.torchserve import is_torchscript

    return is_torchscript(path)


def _callable_model(function: Any) -> Any:
    """``function(frame) -> predictions`` as an MLflow PythonModel."""
    from mlflow.pyfunc.model import PythonModel

    class CallableModel(PythonModel):
        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            return function(model_input)

    return CallableModel()


def _unpickle(path: Path) -> Any:
    import cloudpickle  # type: ignore[import-untyped]

    try:
        with path.open("rb") as handle:
            return cloudpickle.load(handle)
    except Exception as error:
        raise RegistryError(f"{path} is not a loadable pickle: {error}") from None
