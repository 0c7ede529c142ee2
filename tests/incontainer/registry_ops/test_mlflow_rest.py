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

from swarmai.incontainer.mlflow_rest import RestClient, RestError


class _Scripted(http.server.BaseHTTPRequestHandler):
    """Answers GETs with ``script``'s (status, body) pairs in turn; counts them."""

    script: ClassVar[list[tuple[int, dict[str, Any]]]] = []
    calls = 0

    def do_GET(self) -> None:
        status, body = self.script[min(type(self).calls, len(self.script) - 1)]
        type(self).calls += 1
        self.send_response(status)
        self.end_headers()
        self.wfile.write(json.dumps(body).encode())

    def log_message(self, *args: Any) -> None:
        pass


def _scripted(script: list[tuple[int, dict[str, Any]]]) -> Iterator[RestClient]:
    _Scripted.script, _Scripted.calls = script, 0
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
