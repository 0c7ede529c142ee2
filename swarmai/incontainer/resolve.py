"""Which registered version a ``models:/`` URI points at now, asked of MLflow.

Shared by model-sync (each poll) and the registry operations (``check``), which
both run inside containers.  Every function takes an ``mlflow.MlflowClient`` (or
anything with the same look-ups), so tests use a fake or a file-backed MLflow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from swarmai import modeluri


class RegistryError(Exception):
    """MLflow refused or could not answer; the message is MLflow's own."""


@dataclass(frozen=True)
class ModelVersionInfo:
    name: str
    version: str
    aliases: tuple[str, ...]
    status: str = "READY"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_uri(uri: str) -> modeluri.ModelUri:
    """``uri`` parsed; :class:`RegistryError` when it is not a ``models:/`` URI."""
    try:
        return modeluri.parse(uri)
    except modeluri.ModelUriError as error:
        raise RegistryError(str(error)) from None


def resolve(client: Any, uri: str) -> ModelVersionInfo:
    """The registered version ``uri`` points at now; RegistryError with MLflow's message if none."""
    parsed = parse_uri(uri)
    try:
        if parsed.alias is not None:
            found = client.get_model_version_by_alias(parsed.name, parsed.alias)
        else:
            found = client.get_model_version(parsed.name, str(parsed.version))
    except Exception as error:  # MLflow raises MlflowException and HTTP errors alike
        raise RegistryError(mlflow_message(error)) from None
    return version_info(found)


def version_info(version: Any) -> ModelVersionInfo:
    """An MLflow ``ModelVersion`` as the plain facts swarmai reports."""
    return ModelVersionInfo(
        name=str(version.name),
        version=str(version.version),
        aliases=tuple(getattr(version, "aliases", ()) or ()),
        status=str(getattr(version, "status", "READY")),
    )


def mlflow_message(error: Exception) -> str:
    message = getattr(error, "message", None) or str(error)
    return str(message).strip().splitlines()[0] if str(message).strip() else type(error).__name__
