"""``swarmai up`` and ``swarmai down``: a stack on one host with Docker Compose.

The same flow as a Swarm deploy: registry first, models checked in it, then the
model servers, then every route called through the gateway.  Compose reads
secrets from files; swarmai keeps them in the stack's state directory.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from swarmai import engine as docker
from swarmai.engine import Engine
from swarmai.errors import OperationError, UsageError
from swarmai.gateway_check import check_routes
from swarmai.logtext import failure_log_lines
from swarmai.prepare import (
    Prepared,
    StartReport,
    external_secret_hint,
    pin,
    prepare,
    registry_services,
    require_local_images,
    secret_values,
    state_directory,
)
from swarmai.registry_ops import require_models
from swarmai.render.compose import SECRETS_DIR
from swarmai.spec import Stack

Progress = Callable[[str], None]


def up(engine: Engine, stack: Stack, stack_file: Path, *, offline: bool,
       state_dir: Path | None, timeout_s: int, progress: Progress) -> StartReport:
    """Start ``stack`` with Compose and verify every route through the gateway."""
    started = time.monotonic()
    prepared = prepare(stack, "compose", offline=offline, state_dir=state_dir)
    report = StartReport(prepared)
    require_local_images(engine, prepared, offline=offline)
    _ensure_secret_files(prepared, report, progress)
    project, compose_file = stack.name, prepared.main_file
    wanted = registry_services(prepared)
    progress(f"starting the registry of {project}: {', '.join(wanted)}")
    _up(engine, project, compose_file, wanted, timeout_s)
    serving = require_models(engine, prepared, stack_file,
                             "-t compose --offline" if offline else "-t compose")
    prepared = pin(prepared, serving)
    report.prepared = prepared
    progress(f"starting the model servers of {project}")
    _up(engine, project, compose_file, None, timeout_s)
    report.routes = check_routes(prepared.stack, "127.0.0.1", progress=progress)
    report.seconds = time.monotonic() - started
    return report


def down(engine: Engine, stack: Stack, *, volumes: bool, state_dir: Path | None) -> Path | None:
    """Stop and remove the stack's containers and networks; data only with ``volumes``.

    Returns the removed secrets directory, if any (with ``volumes`` only: a
    database volume is useless without its password, and the reverse).
    """
    directory = state_directory(stack, "compose", state_dir)
    compose_file = directory / "compose.yml"
    if not compose_file.is_file():
        raise UsageError(f"stack {stack.name} has no Compose state in {directory}; "
                         "nothing to stop (was it started with `swarmai up`?)")
    docker.compose_down(engine, stack.name, compose_file, volumes=volumes)
    secrets = directory / SECRETS_DIR
    if volumes and secrets.exists():
        shutil.rmtree(secrets)
        return secrets
    return None


def _up(engine: Engine, project: str, compose_file: Path, services: list[str] | None,
        timeout_s: int) -> None:
    try:
        docker.compose_up(engine, project, compose_file, services=services, timeout_s=timeout_s)
    except OperationError as error:
        raise OperationError(f"{error.message}\n{_unhealthy_report(engine, project)}",
                             command=error.command, return_code=error.return_code,
                             stderr=error.stderr) from None


def _unhealthy_report(engine: Engine, project: str) -> str:
    """Each container that is not running healthy, with its health output and logs."""
    lines = []
    for container in docker.project_containers(engine, project):
        details = docker.inspect_container(engine, container["Id"])
        state = details["State"]
        health = (state.get("Health") or {}).get("Status")
        if state.get("Status") == "running" and health in (None, "healthy"):
            continue
        name = container["Labels"].get("com.docker.compose.service", container["Id"][:12])
        lines.append(f"- {name}: {state.get('Status')}"
                     + (f", {health}" if health else "")
                     + (f", exit code {state.get('ExitCode')}" if state.get("ExitCode") else ""))
        probes = (state.get("Health") or {}).get("Log") or []
        if probes and probes[-1].get("Output", "").strip():
            lines.append(f"    last health check: {probes[-1]['Output'].strip()[-300:]}")
        tail = docker.container_log_tail(engine, container["Id"], 400)
        lines.extend(f"    {line}" for line in failure_log_lines(tail))
    return "\n".join(lines) or "(every container is running)"


def _ensure_secret_files(prepared: Prepared, report: StartReport, progress: Progress) -> None:
    """Create missing secret files with random values; never overwrite one."""
    stack = prepared.stack
    folder = prepared.directory / SECRETS_DIR
    # The folder is private; the files inside must stay readable by the
    # non-root users of the containers they are bind-mounted into.
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    for name, value in secret_values(stack).items():
        path = folder / name
        if path.exists():
            continue
        path.write_text(value.content, encoding="utf-8")
        os.chmod(path, 0o644)
        report.created_secrets.append(name)
        progress(f"created secret {name} with a random value in {path}")
        if value.reveal:
            credentials = prepared.directory / f"{name}.credentials"
            docker.write_private_file(credentials, value.reveal)
            report.revealed.append(credentials)
    needed = folder / stack.storage.credentials_secret
    if stack.storage.backend == "external" and not needed.exists():
        raise UsageError(f"{needed} does not exist; write your store's keys there "
                         "(AWS shared-credentials format), or " + external_secret_hint(stack))
