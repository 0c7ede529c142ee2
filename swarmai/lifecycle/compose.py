"""A stack on one host with Docker Compose (``swarmai up`` / ``down``): the Compose
:class:`Backend`.

The same steps as a Swarm deploy (:mod:`.steps`): registry first, models
checked in it, then the model servers, then every route called through the
gateway.  Compose reads secrets from files; swarmai keeps them in the stack's
state directory.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from swarmai import engine as docker
from swarmai.engine import Engine
from swarmai.errors import OperationError, UsageError
from swarmai.files import create_atomically, write_private
from swarmai.lifecycle import compose_roll, steps
from swarmai.lifecycle.logs import LogLines, LogOptions, compose_logs
from swarmai.lifecycle.logtext import failure_log_lines
from swarmai.lifecycle.plan_live import compose_live
from swarmai.lifecycle.plan_shapes import LiveState
from swarmai.lifecycle.rotation import RotationReport, keep_reveal, require_rotatable
from swarmai.lifecycle.rotation_compose import rotate_compose
from swarmai.lifecycle.secrets import fresh_secrets, user_secrets
from swarmai.lifecycle.status import ServiceStatus
from swarmai.lifecycle.steps import (
    Prepared,
    Progress,
    StartOptions,
    StartReport,
    StopReport,
    state_directory,
)
from swarmai.lifecycle.tasks import (
    Task,
    TaskResult,
    compose_run_args,
    missing_secret_files,
    registry_network,
)
from swarmai.render import naming
from swarmai.render.compose import SECRETS_DIR
from swarmai.spec import Stack


@dataclass(frozen=True)
class ComposeBackend:
    """The stack as a Compose project on this engine, its files in the state directory."""

    engine: Engine
    state_dir: Path | None = None
    target: Literal["compose"] = "compose"

    # --- the operations -------------------------------------------------------------

    def start(self, stack: Stack, stack_file: Path, options: StartOptions,
              progress: Progress) -> StartReport:
        """Start ``stack`` with Compose and verify every route (:func:`steps.start`)."""
        return steps.start(self, self.engine, stack, stack_file, options, progress)

    def restart(self, stack: Stack, service: str, *, timeout_s: float,
                progress: Progress) -> None:
        """Replace ``service``'s containers with fresh ones of the same config, and wait
        until they are healthy; a model server's without a gap (:mod:`.compose_roll`)."""
        compose_file = self._compose_file(stack)
        for model in compose_roll.models_to_roll(self.engine, stack, compose_file,
                                                 force=[service]):
            if naming.model_service(model) == service:
                compose_roll.roll(self.engine, stack, compose_file, model, timeout_s=timeout_s,
                                  progress=progress, describe_failure=self._failures(stack))
                return
        docker.compose_recreate(self.engine, stack.name, compose_file, [service],
                                timeout_s=int(timeout_s))

    def run_task(self, stack: Stack, task: Task) -> TaskResult:
        """Run ``task`` in a one-off container on the project's registry network, the
        secrets' files bind-mounted where Swarm would put them (:mod:`.tasks`)."""
        directory = state_directory(stack, "compose", self.state_dir)
        missing = missing_secret_files(task, directory)
        if missing:
            raise OperationError(f"{task.what}: no secret file {', '.join(missing)} in "
                                 f"{directory / SECRETS_DIR}; start the stack with "
                                 "`swarmai up` first (or pass its --state-dir)")
        result = docker.run_oneoff(self.engine, task.image, list(task.command),
                                   network=registry_network(stack),
                                   volumes=compose_run_args(stack, task, directory),
                                   user=task.user, what=task.what)
        return TaskResult(result.return_code, result.stdout, result.stderr)

    def roll_back(self, stack: Stack, service: str, *, timeout_s: float,
                  progress: Progress) -> bool:
        """False: Compose keeps no previous spec; the caller re-applies the old state."""
        return False

    def rotate_secret(self, stack: Stack, stack_file: Path, name: str, *, timeout_s: float,
                      progress: Progress) -> RotationReport:
        """Give generated secret file ``name`` a new value and re-create its services, the
        database's password changed in the database (:mod:`.rotation_compose`)."""
        require_rotatable(stack, name, str(stack_file))
        report = rotate_compose(self.engine, stack, name, lambda task: self.run_task(stack, task),
                                compose_file=self._compose_file(stack), timeout_s=timeout_s,
                                progress=progress)
        return keep_reveal(report, state_directory(stack, self.target, self.state_dir))

    def stop(self, stack: Stack, *, volumes: bool, progress: Progress) -> StopReport:
        """Stop and remove the stack's containers and networks; data only with ``volumes``.

        The secrets directory goes with ``volumes`` only: a database volume is
        useless without its password, and the reverse.
        """
        directory = state_directory(stack, "compose", self.state_dir)
        compose_file = directory / "compose.yml"
        if not compose_file.is_file():
            return self._stop_by_labels(stack, directory, volumes=volumes, progress=progress)
        docker.compose_down(self.engine, stack.name, compose_file, volumes=volumes)
        report = StopReport()
        secrets = directory / SECRETS_DIR
        if volumes and secrets.exists():
            shutil.rmtree(secrets)
            report.removed_secrets_dir = secrets
        return report

    def _stop_by_labels(self, stack: Stack, directory: Path, *, volumes: bool,
                        progress: Progress) -> StopReport:
        """Without its compose file (an interrupted `up`, a lost or different state
        directory), the project is still found by Compose's labels: remove that."""
        removed = docker.remove_project_by_labels(self.engine, stack.name, volumes=volumes)
        if not removed:
            raise UsageError(f"stack {stack.name} has no Compose state in {directory} and no "
                             "containers or networks on this engine; nothing to stop "
                             "(was it started with `swarmai up`?)")
        progress(f"no Compose state in {directory}: removed project {stack.name} by its "
                 f"labels ({len(removed)} objects)")
        return StopReport(removed_volumes=[name.split(" ", 1)[1] for name in removed
                                           if name.startswith("volume ")])

    def cluster_ipvs(self, prepared: Prepared, options: StartOptions,
                     progress: Progress) -> bool | None:
        """Compose has no IPVS question: one host, its own networking."""
        del prepared, options, progress
        return None

    def notes(self, stack: Stack) -> list[str]:
        """Nothing beyond the rows: one host holds everything."""
        del stack
        return []

    def live(self, stack: Stack) -> LiveState:
        """The project's containers, networks and volumes; its config and secret files."""
        return compose_live(self.engine, stack,
                            state_directory(stack, "compose", self.state_dir))

    def rows(self, stack: Stack) -> list[ServiceStatus]:
        """Each service of the project: containers, health, GPUs, image."""
        by_service: dict[str, list[dict[str, Any]]] = {}
        for container in docker.project_containers(self.engine, stack.name):
            name = container["Labels"].get("com.docker.compose.service", "?")
            by_service.setdefault(name, []).append(container)
        rows = []
        for name, containers in sorted(by_service.items()):
            running = [c for c in containers if c["State"] == "running"]
            healthy = [c for c in running
                       if "(healthy)" in c["Status"] or "(" not in c["Status"]]
            details = docker.inspect_container(self.engine, containers[0]["Id"])
            rows.append(ServiceStatus(
                service=name, desired=len(containers), running=len(healthy),
                healthy=len(healthy) == len(containers), nodes=("localhost",),
                gpus=_device_ids(details), image=containers[0]["Image"],
            ))
        return rows

    def logs(self, stack: Stack, services: Sequence[str], options: LogOptions) -> LogLines:
        """Each container's lines, one stream per container of the services."""
        return compose_logs(self.engine, stack, services, options)

    def write_gateway_file(self, stack: Stack, name: str, text: str | None, *,
                           image: str) -> None:
        """Write (``None``: remove) ``name`` in the gateway's dynamic-config volume."""
        steps.write_gateway_file(self.engine, stack, name, text, image=image)

    # --- the steps of an up ---------------------------------------------------------

    def check_engine(self, stack: Stack, stack_file: Path) -> None:
        """Nothing to check: any engine with the Compose plugin runs a project (and a
        project's secrets are its own files)."""
        del stack, stack_file

    def push_flags(self, offline: bool) -> str:
        return "-t compose --offline" if offline else "-t compose"

    def ensure_secrets(self, prepared: Prepared, report: StartReport,
                       progress: Progress) -> None:
        """Create missing secret files with random values; never overwrite one."""
        stack = prepared.stack
        folder = prepared.directory / SECRETS_DIR
        # The folder is private; the files inside must stay readable by the
        # non-root users of the containers they are bind-mounted into.
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        # What swarmai cannot generate (an external store's keys, your certificate)
        # must be there already.
        for needed, missing in user_secrets(stack).items():
            if not (folder / needed).exists():
                raise UsageError(f"{folder / needed} does not exist; write {missing.holds} "
                                 "there")
        for name, fresh in fresh_secrets(stack).items():
            path = folder / name
            if path.exists():  # a value is made only for a missing one
                continue
            value = fresh()
            # Created whole or not at all, and never replaced: a half-written
            # value would be kept as the secret for good.
            if not create_atomically(path, value.content):
                continue
            report.created_secrets.append(name)
            progress(f"created secret {name} with a random value in {path}")
            if value.note:
                progress(f"  {value.note}")
            if value.reveal:
                credentials = prepared.directory / f"{name}.credentials"
                write_private(credentials, value.reveal)
                report.revealed.append(credentials)

    def start_registry(self, prepared: Prepared, services: Sequence[str], since: datetime,
                       options: StartOptions, progress: Progress) -> None:
        self._up(prepared, list(services), options)

    def start_models(self, prepared: Prepared, since: datetime, options: StartOptions,
                     progress: Progress) -> None:
        # A changed model server is rolled first, beside its old containers; the
        # `up` that follows then finds it current and starts everything else.
        for model in compose_roll.models_to_roll(self.engine, prepared.stack,
                                                 prepared.main_file):
            compose_roll.roll(self.engine, prepared.stack, prepared.main_file, model,
                              timeout_s=options.timeout_s, progress=progress,
                              describe_failure=self._failures(prepared.stack))
        progress(f"starting the model servers of {prepared.stack.name}")
        self._up(prepared, None, options)

    def route_host(self, options: StartOptions) -> str:
        return "127.0.0.1"  # Compose publishes the gateway on this host

    def tidy(self, prepared: Prepared) -> list[str]:
        return []  # Compose keeps no configs apart from the files

    def _failures(self, stack: Stack) -> Callable[[], str]:
        return lambda: _unhealthy_report(self.engine, stack.name)

    def _compose_file(self, stack: Stack) -> Path:
        return state_directory(stack, "compose", self.state_dir) / "compose.yml"

    def _up(self, prepared: Prepared, services: list[str] | None,
            options: StartOptions) -> None:
        project = prepared.stack.name
        try:
            docker.compose_up(self.engine, project, prepared.main_file, services=services,
                              timeout_s=int(options.timeout_s))
        except OperationError as error:
            raise OperationError(f"{error.message}\n{_unhealthy_report(self.engine, project)}",
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


def _device_ids(details: dict[str, Any]) -> str:
    """The GPU ids a container reserved ("" when none)."""
    requests = details.get("HostConfig", {}).get("DeviceRequests") or []
    return ",".join(d for r in requests for d in (r.get("DeviceIDs") or []))
