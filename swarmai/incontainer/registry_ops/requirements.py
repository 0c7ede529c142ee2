"""What a registered model version needs installed: its ``requirements.txt``.

MLflow writes ``requirements.txt`` beside every model it logs, with the pins
it inferred from the environment the model was logged in (``mlflow==3.17.2``,
``torch==2.13.0+cpu``...).  The host turns those lines into the model's server
image (:mod:`swarmai.images.model_images`); this side only reads them.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from swarmai import modeluri
from swarmai.incontainer.mlflow_rest import NotProxied, RestClient
from swarmai.incontainer.resolve import RegistryError, parse_uri

REQUIREMENTS_FILE = "requirements.txt"


@dataclass(frozen=True)
class Requirements:
    uri: str  # models:/NAME/VERSION
    lines: list[str]  # as MLflow wrote them; empty when the model has no requirements file
    recorded: bool  # False: the model has no requirements.txt at all

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def requirements(client: Any, uris: list[str]) -> list[Requirements]:
    """The requirement lines of each version URI (``models:/NAME/VERSION``)."""
    return [_one(client, uri) for uri in uris]


def of_resolved(client: Any, uri: str, version: str | None,
                canary: str | None) -> list[Requirements]:
    """The requirements of the version ``uri`` resolved to, and of its canary's."""
    name = parse_uri(uri).name
    return [_one(client, modeluri.version_uri(name, v)) for v in (version, canary)
            if v is not None]


def _one(client: Any, uri: str) -> Requirements:
    parsed = parse_uri(uri)
    if parsed.version is None:
        raise RegistryError(f"{uri}: name a version (models:/NAME/VERSION), not an alias")
    try:
        client.get_model_version(parsed.name, parsed.version)
    except Exception as error:
        raise RegistryError(f"{uri}: {error}") from None
    try:
        text = _read(client, uri, parsed.name, str(parsed.version))
    except Exception as error:
        raise RegistryError(f"{uri}: its {REQUIREMENTS_FILE} cannot be read: {error}") from None
    if text is None:
        # A model pushed as a bare directory may have no requirements file:
        # it then needs nothing beyond the server image.
        return Requirements(uri, [], recorded=False)
    return Requirements(uri, [line.strip() for line in text.splitlines() if line.strip()],
                        recorded=True)


def _read(client: Any, uri: str, name: str, version: str) -> str | None:
    """The version's requirements.txt, None when it has none: over REST when the
    tracking server serves the artifacts, else with mlflow's artifact repositories."""
    if isinstance(client, RestClient):
        try:
            return client.read_version_file(name, version, REQUIREMENTS_FILE)
        except NotProxied:
            pass
    import mlflow

    if isinstance(client, RestClient):  # mlflow's client would have set it already
        mlflow.set_tracking_uri(client.tracking_uri)

    listed = {Path(a.path).name for a in mlflow.artifacts.list_artifacts(artifact_uri=uri)}
    if REQUIREMENTS_FILE not in listed:
        return None
    with tempfile.TemporaryDirectory(prefix="swarmai-requirements-") as tmp:
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{uri}/{REQUIREMENTS_FILE}", dst_path=tmp)
        return Path(path).read_text("utf-8", errors="replace")
