"""The MLflow side of a promotion: describe versions, move aliases, remember state.

swarmai keeps what a promotion must remember in MLflow itself, as tags on the
registered model (named in :mod:`swarmai.modeluri`: ``swarmai.previous.<alias>``
and ``swarmai.canary.<alias>``), so every host (and every cron run) sees the
same thing.

Every function takes an ``MlflowClient`` (or anything with its methods).
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from swarmai import modeluri
from swarmai.incontainer.resolve import RegistryError, mlflow_message


@dataclass(frozen=True)
class VersionFacts:
    """One version, with the metrics of the run that produced it."""

    version: str
    run_id: str | None
    metrics: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AliasMove:
    name: str
    alias: str
    version: str
    previous: str | None  # where the alias pointed before; None if it did not exist
    changed: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe(client: Any, name: str, versions: list[str]) -> dict[str, Any]:
    """The model's aliases, swarmai tags, and the facts of ``versions`` and every alias's."""
    model = _call(lambda: client.get_registered_model(name))
    aliases = {str(k): str(v) for k, v in (getattr(model, "aliases", None) or {}).items()}
    tags = {str(k): str(v) for k, v in (getattr(model, "tags", None) or {}).items()
            if str(k).startswith("swarmai.")}
    wanted = list(dict.fromkeys([*versions, *aliases.values()]))
    facts = {v: _facts(client, name, v).as_dict() for v in wanted}
    return {"name": name, "aliases": aliases, "tags": tags, "versions": facts}


def resolve_alias(client: Any, name: str, alias: str) -> str | None:
    """The version ``alias`` points at, or None when the alias does not exist."""
    model = _call(lambda: client.get_registered_model(name))
    found = (getattr(model, "aliases", None) or {}).get(alias)
    return None if found is None else str(found)


def move_alias(client: Any, name: str, alias: str, version: str, *,
               remember: bool = True) -> AliasMove:
    """Point ``alias`` at ``version``; with ``remember`` (a promotion), first record the
    promotion as pending and the old target as the previous version.

    The records come before the move: a promotion killed right after the move
    leaves them, so the next one knows what to finish or undo. Idempotent: an
    alias already at ``version`` is left alone, and so are its tags (a re-run must
    not forget where to roll back to).
    """
    _call(lambda: client.get_model_version(name, version))  # a clear error for a missing one
    model = _call(lambda: client.get_registered_model(name))
    found = (getattr(model, "aliases", None) or {}).get(alias)
    previous = None if found is None else str(found)
    if previous == version:
        return AliasMove(name, alias, version, previous, changed=False)
    if remember:
        tags = getattr(model, "tags", None) or {}
        recorded = tags.get(modeluri.previous_tag(alias))
        pending = modeluri.Pending(previous, version, None if recorded is None else str(recorded))
        _call(lambda: client.set_registered_model_tag(name, modeluri.pending_tag(alias),
                                                      pending.encode()))
        if previous is not None:
            _call(lambda: client.set_registered_model_tag(name, modeluri.previous_tag(alias),
                                                          previous))
    _call(lambda: client.set_registered_model_alias(name, alias, version))
    return AliasMove(name, alias, version, previous, changed=True)


def set_tag(client: Any, name: str, key: str, value: str | None) -> None:
    """Set (or with ``None`` delete) one of swarmai's registered-model tags."""
    if not key.startswith("swarmai."):
        raise RegistryError(f"tag {key!r} is not one of swarmai's (swarmai.*)")
    if value is not None:
        _call(lambda: client.set_registered_model_tag(name, key, value))
        return
    model = _call(lambda: client.get_registered_model(name))
    if key in (getattr(model, "tags", None) or {}):
        _call(lambda: client.delete_registered_model_tag(name, key))


def preflight(client: Any, name: str, version: str, runtime: str) -> dict[str, Any]:
    """Download ``name`` version ``version`` and check it is what ``runtime`` loads.

    fastapi: the model loads with ``mlflow.pyfunc`` (this runs in the server
    image, which is the fastapi runtime).  tfserving / torchserve: the
    artifacts hold the SavedModel / TorchScript file model-sync lays out.
    app: the artifacts download (how the user's app loads them is its own).
    """
    import mlflow

    _call(lambda: client.get_model_version(name, version))
    uri = modeluri.version_uri(name, version)
    with tempfile.TemporaryDirectory(prefix="swarmai-preflight-") as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        except Exception as error:
            raise RegistryError(f"{uri}: its artifacts cannot be downloaded: "
                                f"{mlflow_message(error)}") from None
        found = _check_layout(uri, local, runtime)
    return {"uri": uri, "runtime": runtime, "checked": found}


def _check_layout(uri: str, local: Path, runtime: str) -> str:
    if runtime == "app":  # the user's app loads it its own way: downloading is the check
        return "artifacts download (the app loads them itself)"
    if runtime == "fastapi":
        import mlflow.pyfunc

        try:
            mlflow.pyfunc.load_model(str(local))
        except Exception as error:
            raise RegistryError(f"{uri} does not load as an MLflow pyfunc model: "
                                f"{type(error).__name__}: {error}") from None
        return "loads with mlflow.pyfunc"
    from swarmai.incontainer.sync.errors import LayoutError

    try:
        if runtime == "tfserving":
            from swarmai.incontainer.sync.tfserving import find_saved_model

            return f"SavedModel at {find_saved_model(local, uri).relative_to(local)}"
        from swarmai.incontainer.sync.torchserve import serialized_model

        model, _handler_model = serialized_model(local, uri)
        return f"serialized model {model.relative_to(local)}"
    except LayoutError as error:
        raise RegistryError(f"{uri} is not a {runtime} model: {error}") from None


def _facts(client: Any, name: str, version: str) -> VersionFacts:
    found = _call(lambda: client.get_model_version(name, version))
    run_id = getattr(found, "run_id", None) or None
    metrics: dict[str, float] = {}
    if run_id:
        try:
            metrics = {str(k): float(v) for k, v in client.get_run(run_id).data.metrics.items()}
        except Exception:  # a deleted run: the version is still servable, it has no metrics
            metrics = {}
    return VersionFacts(str(found.version), run_id, metrics)


def _call(action: Any) -> Any:
    try:
        return action()
    except RegistryError:
        raise
    except Exception as error:  # MLflow raises MlflowException and HTTP errors alike
        raise RegistryError(mlflow_message(error)) from None
