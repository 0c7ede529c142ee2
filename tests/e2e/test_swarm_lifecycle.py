"""The whole Swarm lifecycle on the real engine, as a user runs it.

Empty registry -> deploy names the missing models and exits 1 -> models push ->
deploy serves correct predictions through Traefik, which reads the engine
only through the read-only proxy -> status -> a killed replica
is replaced -> a re-deploy restarts nothing -> a model missing from MLflow fails
the deploy with MLflow's message -> rm --volumes leaves the engine as found.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lifecycle import (
    BAD_MODEL,
    REGISTRY_REFUSED,
    engine_calls_from_gateway,
    engine_snapshot,
    https_url,
    predict_both,
    registry_calls_from_model,
    root_processes,
    swarmai,
    wait_until,
    write_stack,
)

from swarmai.engine import Engine

pytestmark = pytest.mark.e2e

NAME = "e2eswarm"
PORT = 18480


def _status(stack: Path) -> dict[str, dict[str, Any]]:
    result = swarmai("status", str(stack), "--output", "json")
    assert result.returncode == 0, result.stderr
    return {row["service"]: row for row in json.loads(result.stdout)}


def _running_tasks() -> set[str]:
    api = Engine.from_env().api
    services = [s["ID"] for s in api.services(
        filters={"label": f"com.docker.stack.namespace={NAME}"})]
    return {t["ID"] for t in api.tasks(filters={"service": services, "desired-state": "running"})}


def test_swarm_lifecycle(tmp_path: Path, offline_images: dict[str, str],
                         example_models: dict[str, Any]) -> None:
    stack = write_stack(tmp_path, NAME, PORT)
    state = ["--state-dir", str(tmp_path / "state")]
    swarmai("rm", str(stack), "--volumes")  # a previous run's leftovers, if any
    before = engine_snapshot()

    # Secret names are global on a Swarm: one generated for another stack is refused
    # (exit 2, the YAML path and a fix), before anything of this stack is created.
    api = Engine.from_env().api
    foreign = api.create_secret(f"{NAME}-db", b"x", labels={
        "swarmai.stack": "someone-else", "swarmai.generated": "true"})
    try:
        refused = swarmai("deploy", str(stack), "--offline", *state)
    finally:
        api.remove_secret(foreign["ID"])
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert (f"{stack}: registry.db_password_secret: secret {NAME}-db is the one swarmai "
            "generated for stack someone-else") in refused.stderr
    assert f"for example {NAME}-{NAME}-db" in refused.stderr
    assert engine_snapshot() == before

    first = swarmai("deploy", str(stack), "--offline", *state)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "models:/iris@production" in first.stderr
    assert f"swarmai models push {stack} iris PATH --alias production --offline" in first.stderr
    assert f"swarmai models push {stack} churn PATH --alias production --offline" in first.stderr
    assert "Traceback" not in first.stderr

    for name in ("iris", "churn"):
        pushed = swarmai("models", "push", str(stack), name, str(example_models["paths"][name]),
                         "--alias", "production", "--offline")
        assert pushed.returncode == 0, pushed.stderr
        assert f"{name} version 1 (production)" in pushed.stdout

    deployed = swarmai("deploy", str(stack), "--offline", *state)
    assert deployed.returncode == 0, deployed.stderr
    assert f"POST {https_url(PORT, '/churn/v1/predict')}" in deployed.stdout
    assert predict_both(PORT, example_models) == {"iris": "1", "churn": "1"}
    # Traefik routed that through the engine proxy; it has no socket of its own
    # and cannot create a container through the proxy.
    assert engine_calls_from_gateway(f"com.docker.swarm.service.name={NAME}_gateway") == {
        "read": 200, "create": 403, "socket": False}
    # A model server reads MLflow through the registry proxy and can change nothing.
    assert registry_calls_from_model(
        f"com.docker.swarm.service.name={NAME}_model-iris") == REGISTRY_REFUSED
    # Root only where the render says why (naming.ROOT_LABEL), without capabilities.
    assert root_processes(f"com.docker.stack.namespace={NAME}", "com.docker.swarm.service.name") \
        == {f"{NAME}_{name}" for name in ("gateway", "engine-proxy", "mlflow", "s3")}

    status = _status(stack)
    assert (status["model-iris"]["running"], status["model-iris"]["desired"]) == (2, 2)
    assert (status["model-churn"]["running"], status["model-churn"]["desired"]) == (1, 1)
    assert status["model-iris"]["version"] == "1" and status["model-iris"]["healthy"]

    # Kill one replica's container: Swarm replaces it and status is healthy again.
    api = Engine.from_env().api
    victim = api.containers(filters={"label": f"com.docker.swarm.service.name={NAME}_model-iris"})
    api.kill(victim[0]["Id"])
    wait_until(lambda: _status(stack)["model-iris"]["running"] < 2, 30, "the kill to register")
    wait_until(lambda: _status(stack)["model-iris"]["running"] == 2, 180, "the replica to return")
    predict_both(PORT, example_models)

    # A second deploy with nothing changed restarts no task.
    tasks = _running_tasks()
    again = swarmai("deploy", str(stack), "--offline", *state)
    assert again.returncode == 0, again.stderr
    assert _running_tasks() == tasks

    # A model that is not in MLflow: the deploy fails with MLflow's message, and
    # no server for it is started or reported healthy.
    (tmp_path / "ghost").mkdir()
    ghost = write_stack(tmp_path / "ghost", NAME, PORT, extra_model=BAD_MODEL)
    failed = swarmai("deploy", str(ghost), "--offline", *state)
    assert failed.returncode == 1
    assert "models:/ghost@production" in failed.stderr
    assert "ghost" in failed.stderr and "not found" in failed.stderr.lower()
    assert "deployed" not in failed.stdout
    assert "model-ghost" not in _status(stack)
    assert _running_tasks() == tasks

    removed = swarmai("rm", str(stack), "--volumes")
    assert removed.returncode == 0, removed.stderr
    assert engine_snapshot() == before
