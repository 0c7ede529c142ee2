"""The light MLflow REST client's HTTP behaviour, against a scripted local server:
a transient error is retried, a refusal is not and reads as MlflowClient's.
(tests/e2e/test_mlflow_rest.py holds it to mlflow's answers on a real MLflow.)"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from swarmai.incontainer.mlflow_rest import NotProxied, RestClient, RestError


class _Scripted(http.server.BaseHTTPRequestHandler):
    """Answers GETs with ``script``'s (status, body) pairs in turn (a str body as
    it is, else as JSON); counts them and keeps the paths asked for."""

    script: ClassVar[list[tuple[int, dict[str, Any] | str]]] = []
    paths: ClassVar[list[str]] = []
    calls = 0

    def do_GET(self) -> None:
        status, body = self.script[min(type(self).calls, len(self.script) - 1)]
        type(self).calls += 1
        self.paths.append(self.path)
        self.send_response(status)
        self.end_headers()
        self.wfile.write(body.encode() if isinstance(body, str) else json.dumps(body).encode())

    def log_message(self, *args: Any) -> None:
        pass


def _scripted(script: list[tuple[int, dict[str, Any] | str]]) -> Iterator[RestClient]:
    _Scripted.script, _Scripted.calls, _Scripted.paths = script, 0, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield RestClient(f"http://127.0.0.1:{httpd.server_address[1]}")
    finally:
        httpd.shutdown()


def test_a_transient_error_is_retried() -> None:
    found = {"registered_model": {"name": "m", "aliases": [
        {"alias": "production", "version": "3"}]}}
    for client in _scripted([(503, {}), (200, found)]):
        assert client.get_registered_model("m").aliases == {"production": "3"}
    assert _Scripted.calls == 2


def test_a_refusal_is_not_retried_and_reads_as_mlflows() -> None:
    missing = {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no model m"}
    for client in _scripted([(404, missing)]):
        with pytest.raises(RestError) as refused:
            client.get_registered_model("m")
    assert refused.value.message == "RESOURCE_DOES_NOT_EXIST: no model m"
    assert _Scripted.calls == 1


PROXIED = {"artifact_uri": "mlflow-artifacts:/1/models/m-9f/artifacts"}


def test_a_version_file_is_read_through_the_servers_artifact_proxy() -> None:
    for client in _scripted([(200, PROXIED), (200, "mlflow==3.17.2\nscikit-learn==1.8\n")]):
        assert client.read_version_file("iris", "2", "requirements.txt") == \
            "mlflow==3.17.2\nscikit-learn==1.8\n"
    assert _Scripted.paths == [
        "/api/2.0/mlflow/model-versions/get-download-uri?name=iris&version=2",
        "/api/2.0/mlflow-artifacts/artifacts/1/models/m-9f/artifacts/requirements.txt"]


def test_a_missing_version_file_is_none_and_other_refusals_are_errors() -> None:
    missing = {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such file"}
    for client in _scripted([(200, PROXIED), (404, missing)]):
        assert client.read_version_file("iris", "2", "requirements.txt") is None
    for client in _scripted([(200, PROXIED), (403, {"error_code": "PERMISSION_DENIED",
                                                     "message": "no"})]):
        with pytest.raises(RestError, match="PERMISSION_DENIED"):
            client.read_version_file("iris", "2", "requirements.txt")


def test_artifacts_the_server_does_not_serve_are_not_read_over_rest() -> None:
    for client in _scripted([(200, {"artifact_uri": "s3://bucket/1/models/m-9f/artifacts"})]):
        with pytest.raises(NotProxied, match="s3://bucket"):
            client.read_version_file("iris", "2", "requirements.txt")
    assert _Scripted.calls == 1
