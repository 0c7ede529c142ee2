"""The single-node Compose lifecycle on the real engine: up, push, predict, down."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lifecycle import (
    REGISTRY_REFUSED,
    engine_calls_from_gateway,
    engine_snapshot,
    https_url,
    predict_both,
    registry_calls_from_model,
    root_processes,
    swarmai,
    write_stack,
)

from swarmai.engine import Engine

pytestmark = pytest.mark.e2e

NAME = "e2ecompose"
PORT = 18490


def _containers() -> set[str]:
    api = Engine.from_env().api
    return {c["Id"] for c in api.containers(
        all=True, filters={"label": f"com.docker.compose.project={NAME}"})}


def test_compose_lifecycle(tmp_path: Path, offline_images: dict[str, str],
                           example_models: dict[str, Any]) -> None:
    stack = write_stack(tmp_path, NAME, PORT)
    state = ["--state-dir", str(tmp_path / "state")]
    before = engine_snapshot()

    first = swarmai("up", str(stack), "--offline", *state)
    assert first.returncode == 1, first.stdout + first.stderr
    assert f"swarmai models push {stack} iris PATH --alias production -t compose --offline" \
        in first.stderr

    for name in ("iris", "churn"):
        pushed = swarmai("models", "push", str(stack), name, str(example_models["paths"][name]),
                         "--alias", "production", "-t", "compose", "--offline")
        assert pushed.returncode == 0, pushed.stderr

    started = swarmai("up", str(stack), "--offline", *state)
    assert started.returncode == 0, started.stderr
    assert f"POST {https_url(PORT, '/models/iris/v1/predict')}" in started.stdout
    assert predict_both(PORT, example_models) == {"iris": "1", "churn": "1"}
    # Traefik routed that through the engine proxy, and holds no socket itself.
    assert engine_calls_from_gateway(f"com.docker.compose.project={NAME}",
                                     "com.docker.compose.service=gateway") == {
        "read": 200, "create": 403, "socket": False}
    # A model server reads MLflow through the registry proxy and can change nothing.
    project = f"com.docker.compose.project={NAME}"
    assert registry_calls_from_model(
        project, "com.docker.compose.service=model-iris") == REGISTRY_REFUSED
    # Root only where the render says why (naming.ROOT_LABEL), without capabilities.
    assert root_processes(project, "com.docker.compose.service") == {
        "gateway", "engine-proxy", "mlflow", "s3"}

    rows = json.loads(swarmai("status", str(stack), "-t", "compose", "-o", "json").stdout)
    status = {row["service"]: row for row in rows}
    assert (status["model-iris"]["running"], status["model-iris"]["desired"]) == (2, 2)
    assert status["model-churn"]["version"] == "1"

    containers = _containers()
    again = swarmai("up", str(stack), "--offline", *state)
    assert again.returncode == 0, again.stderr
    assert _containers() == containers, "an unchanged `up` recreated containers"

    # As after an interrupted run: `up`'s state directory is not the one at hand.
    # The project is found by its Compose labels and removed all the same.
    lost = ["--state-dir", str(tmp_path / "lost")]
    stopped = swarmai("down", str(stack), "--volumes", *lost)
    assert stopped.returncode == 0, stopped.stderr
    assert "removed project e2ecompose by its labels" in stopped.stderr
    assert f"removed volume {NAME}_" in stopped.stdout
    assert engine_snapshot() == before
    again = swarmai("down", str(stack), "--volumes", *lost)
    assert again.returncode == 2, again.stdout + again.stderr
    assert "nothing to stop" in again.stderr and "Traceback" not in again.stderr
