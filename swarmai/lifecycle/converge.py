"""Watch a Swarm stack until every service has converged and is healthy, or report why not.

``docker stack deploy --detach=false`` waits service by service through each
update-monitor window; watching all task states at once is an order of
magnitude faster (ENVIRONMENT.md section 7) and lets a failure be reported
as soon as it is certain, with the failing service's errors and logs.

A Swarm task is ``running`` only after its healthcheck passed, so "running and
built from the current spec" is "healthy on the current version".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from swarmai.engine import Engine, service_log_tail, service_tasks, stack_services
from swarmai.errors import OperationError
from swarmai.lifecycle.logtext import failure_log_lines

# A service that lost this many tasks since the deploy started is broken, not
# starting up.  Registry services wait for their dependencies themselves; model
# servers start only once the registry is healthy, so one lost task is enough.
FAILED_TASKS_LIMIT = 2
MODEL_FAILED_TASKS_LIMIT = 1
# A server never completes on its own: "complete" means its container exited,
# e.g. after a failed healthcheck made Swarm stop it and it drained cleanly.
_ENDED_STATES = ("failed", "rejected", "complete")
_BAD_UPDATE_STATES = ("paused", "rollback_started", "rollback_paused", "rollback_completed")


@dataclass(frozen=True)
class ServiceState:
    name: str  # without the stack prefix
    desired: int
    running: int
    starting: int = 0
    failure_limit: int = FAILED_TASKS_LIMIT
    failures: tuple[str, ...] = ()
    pending_errors: tuple[str, ...] = ()
    update_state: str | None = None
    update_message: str = ""

    @property
    def converged(self) -> bool:
        return self.running >= self.desired and self.update_state not in _BAD_UPDATE_STATES

    @property
    def failed(self) -> bool:
        return (len(self.failures) >= self.failure_limit
                or self.update_state in _BAD_UPDATE_STATES)

    def describe(self) -> str:
        return f"{self.name} {self.running}/{self.desired}"


@dataclass
class WatchResult:
    states: list[ServiceState] = field(default_factory=list)
    seconds: float = 0.0


def summarize(
    stack_name: str, services: Sequence[dict[str, Any]], tasks: Sequence[dict[str, Any]],
    since: datetime,
) -> list[ServiceState]:
    """Each service's convergence from raw API data (pure: unit-testable)."""
    by_service: dict[str, list[dict[str, Any]]] = {}
    for task in tasks:
        by_service.setdefault(task["ServiceID"], []).append(task)
    states = []
    for service in services:
        own = by_service.get(service["ID"], [])
        states.append(_service_state(stack_name, service, own, since))
    return sorted(states, key=lambda s: s.name)


def _service_state(
    stack_name: str, service: dict[str, Any], tasks: list[dict[str, Any]], since: datetime
) -> ServiceState:
    spec = service["Spec"]
    template = spec["TaskTemplate"]
    wanted = [t for t in tasks if t.get("DesiredState") == "running"]
    replicated = spec.get("Mode", {}).get("Replicated")
    desired = int(replicated.get("Replicas", 1)) if replicated else max(len(wanted), 1)
    current = [t for t in wanted
               if t["Status"]["State"] == "running" and _same_spec(t["Spec"], template)]
    recent = [t for t in tasks if _timestamp(t.get("CreatedAt")) >= since]
    failures = tuple(_task_error(t) for t in recent if t["Status"]["State"] in _ENDED_STATES)
    starting = [t for t in wanted if t["Status"]["State"] in ("starting", "preparing", "assigned")]
    is_model = "swarmai.model" in (spec.get("Labels") or {})
    pending = tuple(
        _task_error(t) for t in wanted
        if t["Status"]["State"] == "pending" and t["Status"].get("Err")
    )
    update = service.get("UpdateStatus") or {}
    return ServiceState(
        name=spec["Name"].removeprefix(f"{stack_name}_"),
        desired=desired,
        running=len(current),
        starting=len(starting),
        failure_limit=MODEL_FAILED_TASKS_LIMIT if is_model else FAILED_TASKS_LIMIT,
        failures=failures,
        pending_errors=pending,
        update_state=update.get("State"),
        update_message=update.get("Message", ""),
    )


# The service's TaskTemplate carries fields the engine fills in but does not copy
# into each task's Spec (Runtime: "container"); they say nothing about versions.
_UNCOPIED_FIELDS = frozenset({"Runtime"})


def _same_spec(task_spec: dict[str, Any], template: dict[str, Any]) -> bool:
    """True when the task was created from this version of the service spec."""
    keys = (set(task_spec) | set(template)) - _UNCOPIED_FIELDS
    return all(task_spec.get(key) == template.get(key) for key in keys)


def _task_error(task: dict[str, Any]) -> str:
    status = task["Status"]
    if status["State"] == "complete":
        return "the container exited (stopped after failing its healthcheck?)"
    return str(status.get("Err") or status.get("Message") or status["State"])


def _timestamp(value: str | None) -> datetime:
    if not value:
        return datetime.min.replace(tzinfo=UTC)
    # Docker writes nanoseconds; Python parses at most microseconds.
    head, _, tail = value.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(tail + '000000')[:6]}+00:00")


def watch(
    engine: Engine,
    stack_name: str,
    *,
    services: Sequence[str] | None = None,
    since: datetime,
    timeout_s: float,
    progress: Callable[[str], None] = lambda _: None,
    poll_s: float = 1.0,
) -> WatchResult:
    """Wait until ``services`` (default: all) converged; raise on failure or timeout."""
    start = time.monotonic()
    shown: dict[str, str] = {}
    while True:
        listed = stack_services(engine, stack_name)
        if services is not None:
            prefix = f"{stack_name}_"
            listed = [s for s in listed if s["Spec"]["Name"].removeprefix(prefix) in services]
        tasks = service_tasks(engine, [s["ID"] for s in listed])
        states = summarize(stack_name, listed, tasks, since)
        _report_changes(states, shown, progress)
        broken = [s for s in states if s.failed]
        if broken:
            raise _failure(engine, stack_name, broken, "failed")
        if states and all(s.converged for s in states):
            return WatchResult(states, time.monotonic() - start)
        if time.monotonic() - start > timeout_s:
            waiting = [s for s in states if not s.converged]
            how = f"did not converge within {timeout_s:.0f} s"
            raise _failure(engine, stack_name, waiting, how)
        time.sleep(poll_s)


def wait_rolled_back(engine: Engine, stack_name: str, service: str, *, timeout_s: float,
                     progress: Callable[[str], None] = lambda _: None,
                     poll_s: float = 1.0) -> None:
    """Wait until Swarm has rolled ``service`` back and its tasks run on the restored spec.

    Not :func:`watch`: a rolled-back service reports ``rollback_started`` for a
    whole monitor window (and ``rollback_completed`` after), which ``watch``
    rightly counts as a failed deploy.  Here it is the expected way back.
    """
    start = time.monotonic()
    while True:
        listed = [s for s in stack_services(engine, stack_name)
                  if s["Spec"]["Name"] == f"{stack_name}_{service}"]
        states = summarize(stack_name, listed, service_tasks(engine, [s["ID"] for s in listed]),
                           datetime.now(UTC))
        state = states[0] if states else None
        if state is not None and state.update_state == "rollback_paused":
            raise _failure(engine, stack_name, [state], "could not be rolled back")
        if (state is not None and state.update_state in ("rollback_started", "rollback_completed")
                and state.running >= state.desired):
            progress(f"  {service:24} {state.running}/{state.desired} healthy, rolled back")
            return
        if time.monotonic() - start > timeout_s:
            raise OperationError(f"service {service} was not rolled back within "
                                 f"{timeout_s:.0f} s")
        time.sleep(poll_s)


def _report_changes(states: list[ServiceState], shown: dict[str, str],
                    progress: Callable[[str], None]) -> None:
    for state in states:
        line = f"  {state.name:24} {state.running}/{state.desired} healthy"
        if state.starting:
            line += f", {state.starting} starting"
        if state.failures:
            line += f", {len(state.failures)} failed task(s): {state.failures[-1]}"
        if shown.get(state.name) != line:
            shown[state.name] = line
            progress(line)


def _failure(
    engine: Engine, stack_name: str, states: list[ServiceState], how: str
) -> OperationError:
    lines = [f"stack {stack_name}: {', '.join(s.name for s in states)} {how}"]
    for state in states:
        lines.append(f"- {state.describe()} healthy")
        errors = dict.fromkeys((*state.failures, *state.pending_errors))
        lines.extend(f"    task error: {error}" for error in list(errors)[-5:])
        if state.update_state in _BAD_UPDATE_STATES:
            lines.append(f"    update {state.update_state}: {state.update_message}")
        shown = failure_log_lines(service_log_tail(engine, f"{stack_name}_{state.name}", 400))
        if shown:
            lines.append("    log (error lines, then the last lines):")
            lines.extend(f"      {line}" for line in shown)
    return OperationError("\n".join(lines))
