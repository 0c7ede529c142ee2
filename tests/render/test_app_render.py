"""`runtime: app` rendered: the user's image behind swarmai's route, probes and rolls.

The whole files are in tests/render/golden/app-*; these name what matters.
"""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from swarmai.render import Serving, render_bundle, runtimes
from swarmai.render.common import http_probe as health_probe
from swarmai.spec import Stack, load_stack

APPS = Path(__file__).resolve().parent / "stacks" / "app.yaml"
Render = Callable[..., dict[str, Any]]


@pytest.fixture
def apps() -> Stack:
    return load_stack(APPS, "swarm")


def _plan(stack: Stack, name: str) -> Any:
    model = next(m for m in stack.models if m.name == name)
    (plan,) = runtimes.model_services(stack, model)
    return plan


def test_an_app_runs_its_own_image_and_command_behind_its_port(apps: Stack) -> None:
    plan = _plan(apps, "ranker")
    assert plan.image == "registry.example:5000/team/ranker:1.4.2"
    assert plan.command == ("uvicorn", "ranker.main:app", "--host", "0.0.0.0", "--port", "9000")
    assert plan.entrypoint is None  # the image's ENTRYPOINT stays
    assert (plan.route_port, plan.ready_path) == (9000, "/health/ready")
    assert plan.healthcheck.test == health_probe(9000, "/health/live")
    assert plan.volumes == ()  # swarmai mounts nothing into an app
    # GPU pinning, drain and roll policy are every model server's.
    assert (plan.placement_node, plan.stop_grace_s, plan.start_first) == ("gpu-a", 20, False)


def test_an_app_with_a_model_gets_it_pinned_and_what_mlflow_clients_need(apps: Stack) -> None:
    bundle = render_bundle(apps, "swarm", ipvs=False, serving=Serving(pinned={"ranker": "7"}))
    service = yaml.safe_load(bundle.files["stack.yml"])["services"]["model-ranker"]
    environment, labels = service["environment"], service["deploy"]["labels"]
    assert environment["MODEL_URI"] == "models:/ranker/7"
    assert environment["MLFLOW_TRACKING_URI"] == "http://registry-proxy:5000"
    assert environment["MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD"] == "false"
    assert (environment["MODEL_NAME"], environment["PORT"]) == ("ranker", "9000")
    assert environment["LOG_LEVEL"] == "info"
    assert (labels["swarmai.runtime"], labels["swarmai.model-uri"]) == ("app", "models:/ranker/7")
    assert _plan(apps, "ranker").depends_on == ("registry-proxy",)


def test_an_app_without_a_model_is_given_no_registry(apps: Stack) -> None:
    plan = _plan(apps, "echo")
    assert plan.environment == {"MODEL_NAME": "echo", "PORT": "8000"}
    assert "swarmai.model-uri" not in plan.labels
    assert plan.depends_on == ()
    assert (plan.replicas, plan.start_first, plan.ready_path) == (2, True, "/healthz")


def test_the_gateway_routes_and_health_checks_an_app_on_both_targets(
        apps: Stack, main_document: Render) -> None:
    for target in ("compose", "swarm"):
        service = main_document(apps, target)["services"]["model-echo"]
        labels = service["deploy"]["labels"] if target == "swarm" else service["labels"]
        assert labels["traefik.http.services.apps-echo.loadbalancer.server.port"] == "8000"
        assert labels["traefik.http.services.apps-echo.loadbalancer.healthcheck.path"] == \
            "/healthz"
        assert "PathPrefix(`/echo/`)" in labels["traefik.http.routers.apps-echo.rule"]
        assert "depends_on" not in service


def test_the_health_probe_passes_on_2xx_and_says_why_it_failed_otherwise() -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/healthz" else 503)
            self.end_headers()
            self.wfile.write(b"ok" if self.path == "/healthz" else b"draining")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        def probe(port: int, path: str) -> subprocess.CompletedProcess[str]:
            test = health_probe(port, path)
            assert test[:2] == ("CMD", "python3")  # exec form: no shell in the image needed
            return subprocess.run([sys.executable, *test[2:]], capture_output=True, text=True,
                                  timeout=30, check=False)

        assert probe(port, "/healthz").returncode == 0
        unready = probe(port, "/ready")
        assert (unready.returncode, unready.stderr.strip()) == (1, "HTTP 503 on /ready: draining")
    finally:
        server.shutdown()
        server.server_close()
    silent = probe(port, "/healthz")
    assert silent.returncode == 1 and silent.stderr.startswith("no answer on /healthz: ")


def test_an_apps_canary_is_refused(apps: Stack) -> None:
    with pytest.raises(ValueError, match="canaries are for fastapi models"):
        runtimes.canary_service(apps, apps.models[0], "7")
