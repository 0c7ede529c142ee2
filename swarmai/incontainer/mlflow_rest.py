"""The registry look-ups and moves swarmai makes, over MLflow's REST API, without mlflow.

``import mlflow`` costs seconds (about 3 on an idle two-core machine, 7 to 11
with a stack starting beside it), and every registry operation is a one-off
container: the ``check`` before each deploy and the four or five calls of a
promotion each paid it.  These calls are a handful of MLflow's REST endpoints
(``mlflow.protos``' ModelRegistryService and MlflowService), so this client
makes them with the standard library and answers as ``mlflow.MlflowClient``'s
methods of the same names do, as far as swarmai's callers (duck-typed:
:mod:`swarmai.incontainer.resolve`, ``registry_ops``) read them.  It also
reads one small file of a version's artifacts when the server proxies them
(``mlflow-artifacts:``, as every stack's MLflow does): the requirements read
before each deploy.  Pushing and pre-flight still use mlflow: they log,
download and load models.  tests/e2e/test_mlflow_rest.py holds the two
clients to the same answers against a real ``mlflow server``.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

_API = "/api/2.0/mlflow"
_ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"
_PROXIED_SCHEME = "mlflow-artifacts"
# What MLflow's own client retries (mlflow.utils.rest_utils), with a shorter
# back-off: these calls are small, and a deploy is waiting.
_TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})
_BACKOFF_S = (1.0, 2.0, 4.0, 8.0)
_TIMEOUT_S = 60.0


class RestError(Exception):
    """MLflow answered with an error; ``message`` reads as MlflowClient's does."""

    def __init__(self, error_code: str, message: str) -> None:
        self.error_code = error_code
        self.message = f"{error_code}: {message}"
        super().__init__(self.message)


class NotProxied(Exception):
    """The version's artifacts are not served by the tracking server (an ``s3://``
    root, say): reading them needs mlflow's own artifact repositories."""


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> version
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    status: str = "READY"
    run_id: str | None = None
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunData:
    metrics: dict[str, float]


@dataclass(frozen=True)
class Run:
    data: RunData


class RestClient:
    """MLflow at ``tracking_uri`` (http or https), for the calls listed above."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri.rstrip("/")
        self._base = self.tracking_uri + _API

    def get_registered_model(self, name: str) -> RegisteredModel:
        return _registered_model(self._get("registered-models/get", name=name)
                                 ["registered_model"])

    def search_registered_models(self) -> list[RegisteredModel]:
        return [_registered_model(m)
                for m in self._pages("registered-models/search", "registered_models")]

    def get_model_version(self, name: str, version: str) -> ModelVersion:
        return _model_version(self._get("model-versions/get", name=name,
                                        version=str(version))["model_version"])

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return _model_version(self._get("registered-models/alias", name=name,
                                        alias=alias)["model_version"])

    def search_model_versions(self, filter_string: str) -> list[ModelVersion]:
        return [_model_version(v) for v in self._pages("model-versions/search",
                                                       "model_versions", filter=filter_string)]

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self._send("POST", "registered-models/alias",
                   {"name": name, "alias": alias, "version": str(version)})

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        self._send("POST", "registered-models/set-tag",
                   {"name": name, "key": key, "value": str(value)})

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self._send("DELETE", "registered-models/delete-tag", {"name": name, "key": key})

    def get_run(self, run_id: str) -> Run:
        metrics = self._get("runs/get", run_id=run_id)["run"].get("data", {}).get("metrics", [])
        return Run(RunData({str(m["key"]): float(m["value"]) for m in metrics}))

    def get_model_version_download_uri(self, name: str, version: str) -> str:
        return str(self._get("model-versions/get-download-uri", name=name,
                             version=str(version))["artifact_uri"])

    def read_version_file(self, name: str, version: str, filename: str) -> str | None:
        """``filename`` of the version's artifacts as text; None when it has none.
        NotProxied when the server does not serve the version's artifacts."""
        location = urllib.parse.urlparse(self.get_model_version_download_uri(name, version))
        if location.scheme != _PROXIED_SCHEME:
            raise NotProxied(location.geturl())
        path = urllib.parse.quote(f"{location.path.strip('/')}/{filename}")
        try:
            return _fetch(urllib.request.Request(f"{self.tracking_uri}{_ARTIFACTS_API}/{path}"))
        except RestError as error:
            if error.error_code in ("404", "RESOURCE_DOES_NOT_EXIST"):
                return None
            raise

    # --- HTTP --------------------------------------------------------------------------

    def _get(self, endpoint: str, **query: str) -> dict[str, Any]:
        url = f"{self._base}/{endpoint}?{urllib.parse.urlencode(query)}"
        return _request(urllib.request.Request(url))

    def _pages(self, endpoint: str, key: str, **query: str) -> Iterator[dict[str, Any]]:
        token = ""
        while True:
            page = self._get(endpoint, **query, max_results="1000",
                             **({"page_token": token} if token else {}))
            yield from page.get(key, [])
            token = page.get("next_page_token", "")
            if not token:
                return

    def _send(self, method: str, endpoint: str, body: dict[str, str]) -> dict[str, Any]:
        return _request(urllib.request.Request(
            f"{self._base}/{endpoint}", data=json.dumps(body).encode(), method=method,
            headers={"Content-Type": "application/json"}))


def _request(request: urllib.request.Request) -> dict[str, Any]:
    """The answer's JSON; RestError for MLflow's errors, after retrying transient ones."""
    answer: dict[str, Any] = json.loads(_body(request) or b"{}")
    return answer


def _fetch(request: urllib.request.Request) -> str:
    """The answer as text (a file's content), retried as :func:`_request` is."""
    return _body(request).decode("utf-8", errors="replace")


def _body(request: urllib.request.Request) -> bytes:
    for pause in _BACKOFF_S:
        try:
            return _answer(request)
        except urllib.error.HTTPError as error:
            if error.code not in _TRANSIENT:
                raise _rest_error(error) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(pause)
    try:
        return _answer(request)
    except urllib.error.HTTPError as error:
        raise _rest_error(error) from None


def _answer(request: urllib.request.Request) -> bytes:
    with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
        body: bytes = response.read()
    return body


def _rest_error(error: urllib.error.HTTPError) -> RestError:
    body = error.read()
    try:
        answer = json.loads(body)
    except ValueError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    return RestError(str(answer.get("error_code") or error.code),
                     str(answer.get("message") or body.decode(errors="replace")[:500]))


def _tags(items: list[dict[str, Any]] | None) -> dict[str, str]:
    return {str(t["key"]): str(t.get("value", "")) for t in items or []}


def _registered_model(raw: dict[str, Any]) -> RegisteredModel:
    return RegisteredModel(
        name=str(raw["name"]),
        aliases={str(a["alias"]): str(a["version"]) for a in raw.get("aliases", [])},
        tags=_tags(raw.get("tags")),
    )


def _model_version(raw: dict[str, Any]) -> ModelVersion:
    return ModelVersion(
        name=str(raw["name"]),
        version=str(raw["version"]),
        status=str(raw.get("status", "READY")),
        run_id=str(raw["run_id"]) if raw.get("run_id") else None,
        aliases=tuple(str(a) for a in raw.get("aliases", [])),
        tags=_tags(raw.get("tags")),
    )
