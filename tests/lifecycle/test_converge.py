"""Convergence from raw Swarm API data: pure logic, no engine."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from swarmai.lifecycle.converge import FAILED_TASKS_LIMIT, summarize

SINCE = datetime(2026, 1, 1, tzinfo=UTC)
TEMPLATE = {"ContainerSpec": {"Image": "swarmai/server:1"}}
OLD_TEMPLATE = {"ContainerSpec": {"Image": "swarmai/server:0"}}


def service(name: str, replicas: int | None = 2, update: str | None = None) -> dict[str, Any]:
    mode = {"Replicated": {"Replicas": replicas}} if replicas is not None else {"Global": {}}
    spec = {"Name": f"demo_{name}", "TaskTemplate": TEMPLATE, "Mode": mode}
    found: dict[str, Any] = {"ID": name, "Spec": spec}
    if update:
        found["UpdateStatus"] = {"State": update, "Message": "update rolled back"}
    return found


def task(service_id: str, state: str, *, desired: str = "running", spec: Any = None,
         err: str = "", created: str = "2026-01-01T00:00:05.123456789Z") -> dict[str, Any]:
    return {"ServiceID": service_id, "DesiredState": desired, "CreatedAt": created,
            "Spec": spec or TEMPLATE, "Status": {"State": state, "Err": err}}


def test_running_tasks_of_the_current_spec_converge() -> None:
    (state,) = summarize("demo", [service("api")],
                         [task("api", "running"), task("api", "running")], SINCE)
    assert (state.name, state.running, state.desired, state.converged) == ("api", 2, 2, True)


def test_fields_the_engine_does_not_copy_into_tasks_are_ignored() -> None:
    swarm_service = service("api", 1)
    swarm_service["Spec"]["TaskTemplate"] = {**TEMPLATE, "Runtime": "container"}
    (state,) = summarize("demo", [swarm_service], [task("api", "running")], SINCE)
    assert state.converged


def test_tasks_of_the_previous_spec_do_not_count() -> None:
    tasks = [task("api", "running"), task("api", "running", spec=OLD_TEMPLATE)]
    (state,) = summarize("demo", [service("api")], tasks, SINCE)
    assert state.running == 1 and not state.converged


def test_starting_tasks_are_not_yet_healthy() -> None:
    (state,) = summarize("demo", [service("api", 1)], [task("api", "starting")], SINCE)
    assert state.running == 0 and not state.failed


def test_repeated_failures_since_the_deploy_mark_the_service_failed() -> None:
    failures = [task("api", "failed", desired="shutdown", err="task: non-zero exit (1)")
                for _ in range(FAILED_TASKS_LIMIT)]
    (state,) = summarize("demo", [service("api", 1)], failures, SINCE)
    assert state.failed
    assert state.failures[-1] == "task: non-zero exit (1)"


def test_failures_before_the_deploy_are_history() -> None:
    old = [task("api", "failed", desired="shutdown", created="2025-12-31T23:59:00Z")
           for _ in range(FAILED_TASKS_LIMIT)]
    (state,) = summarize("demo", [service("api", 1)], [*old, task("api", "running")], SINCE)
    assert not state.failed and state.converged


def test_a_rolled_back_update_is_a_failure() -> None:
    (state,) = summarize("demo", [service("api", 1, update="rollback_completed")],
                         [task("api", "running")], SINCE)
    assert state.failed and not state.converged


def test_global_services_want_one_task_per_eligible_node() -> None:
    tasks = [task("sync", "running"), task("sync", "pending", err="no suitable node")]
    (state,) = summarize("demo", [service("sync", None)], tasks, SINCE)
    assert (state.running, state.desired) == (1, 2)
    assert state.pending_errors == ("no suitable node",)


def test_a_model_server_that_stops_once_has_failed() -> None:
    model = service("model-a", 1)
    model["Spec"]["Labels"] = {"swarmai.model": "a"}
    ended = task("model-a", "complete", desired="shutdown")
    (state,) = summarize("demo", [model], [ended, task("model-a", "starting")], SINCE)
    assert state.failed and state.starting == 1
    assert "healthcheck" in state.failures[0]
