"""What deploy, status, plan and promotion's check make of a `runtime: app` model.

An app names its own paths: its route is probed on its ready path, its version is
whatever it sends as X-Model-Version there (nothing, often), and only an app that
loads an aliased registry model is pinned and checked in MLflow.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from swarmai.lifecycle.plan import model_lines, running_versions
from swarmai.lifecycle.plan_shapes import LiveState, ServiceShape
from swarmai.lifecycle.routes import prediction_url, probe_path
from swarmai.lifecycle.status import served_version
from swarmai.lifecycle.steps import Prepared, registry_uris, require_models, serving_from
from swarmai.promotion.verify import wait_for_version
from swarmai.registry_client import CheckResult
from swarmai.render import render_bundle
from swarmai.spec import Stack


def _stack(port: int = 80) -> Stack:
    app = {"image": "me/app:1", "ready_path": "/ready"}
    # Plain HTTP: the in-process gateway below speaks no TLS.
    gateway = {"port": port, "tls": {"mode": "off"}}
    return Stack.model_validate({"version": 1, "name": "s", "gateway": gateway, "models": [
        {"name": "plain", "runtime": "app", "app": app},
        {"name": "tagged", "runtime": "app", "app": app, "model": "models:/tagged@production"},
        {"name": "fixed", "runtime": "app", "app": app, "model": "models:/fixed/3"},
        {"name": "api", "runtime": "fastapi", "model": "models:/api@production"},
    ]})


class _App(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path.endswith("/ready") else 404)
        if self.path.startswith("/models/tagged/"):
            self.send_header("X-Model-Version", "4")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_an_apps_route_is_probed_on_its_ready_path_and_its_paths_are_its_own() -> None:
    stack = _stack(8080)
    plain = stack.models[0]
    assert probe_path(plain) == "/ready"
    assert prediction_url(stack, plain, "h") == "http://h:8080/models/plain"


def test_an_app_names_its_version_only_if_it_sends_one(gateway: int) -> None:
    stack = _stack(gateway)
    versions = {m.name: served_version(stack, m, "127.0.0.1") for m in stack.models[:3]}
    assert versions == {"plain": "", "tagged": "4", "fixed": ""}


def test_promotion_does_not_wait_for_a_version_an_app_never_sends(gateway: int) -> None:
    stack = _stack(gateway)
    said: list[str] = []
    wait_for_version(stack, stack.models[2], "3", "127.0.0.1", progress=said.append,
                     timeout_s=5)
    assert "sends no X-Model-Version" in said[0]
    wait_for_version(stack, stack.models[1], "4", "127.0.0.1", progress=said.append)
    assert said[-1] == "/models/tagged answers with version 4"


def test_only_apps_with_a_registry_model_are_checked_and_aliased_ones_pinned() -> None:
    stack = _stack()
    assert registry_uris(stack) == [
        "models:/tagged@production", "models:/fixed/3", "models:/api@production"]
    results = [CheckResult(uri, True, 4) for uri in registry_uris(stack)]
    serving = serving_from(stack, results)
    assert dict(serving.pinned) == {"tagged": "4", "api": "4"}
    pinned = render_bundle(stack, "compose", serving=serving).files["compose.yml"]
    assert "MODEL_URI: models:/tagged/4" in pinned and "MODEL_URI: models:/fixed/3" in pinned


def test_a_stack_of_apps_without_models_asks_mlflow_nothing(tmp_path: Path) -> None:
    stack = Stack.model_validate({"version": 1, "name": "s", "models": [
        {"name": "plain", "runtime": "app", "app": {"image": "me/app:1"}}]})
    prepared = Prepared(stack, "swarm", render_bundle(stack, "swarm"), tmp_path)
    # No engine is touched: there is nothing to check.
    serving, known = require_models(None, prepared, tmp_path / "s.yaml",  # type: ignore[arg-type]
                                    "")
    assert (dict(serving.pinned), dict(serving.canaries), known) == ({}, {}, ())


def test_plan_lists_the_registry_models_of_apps_and_skips_the_others() -> None:
    stack = _stack()
    live = LiveState(services={
        "model-plain": ServiceShape(image="me/app:1"),
        "model-tagged": ServiceShape(image="me/app:1", version="4", model="tagged"),
    })
    lines = {line.model: line for line in model_lines(stack, None, live)}
    assert sorted(lines) == ["api", "fixed", "tagged"]
    assert (lines["tagged"].running, lines["tagged"].running_state) == ("4", "pinned")
    assert running_versions(stack, live) == ({"tagged": "4"}, {})
