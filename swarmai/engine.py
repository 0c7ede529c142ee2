"""The one module that talks to the Docker engine.

Two clients, each for what it does best, both handed in by the caller:
python-on-whales drives the docker CLI for what only the CLI does well (stack
deploy, compose, one-off runs), and docker-py's low-level API answers the many
small reads a convergence watch makes without a subprocess each.  Every engine
failure leaves this module as an :class:`OperationError` carrying the command,
its exit code and stderr.
"""

from __future__ import annotations

import contextlib
import os
import secrets as random_source
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
from docker.errors import DockerException as ApiError
from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from swarmai.errors import OperationError

# Labels swarmai puts on engine objects it creates outside a stack file, so it
# can find them again and never touch anything else.
STACK_LABEL = "swarmai.stack"
GENERATED_LABEL = "swarmai.generated"
NAMESPACE_LABEL = "com.docker.stack.namespace"
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"


@dataclass(frozen=True)
class Engine:
    """The Docker engine as swarmai uses it."""

    cli: DockerClient
    api: Any  # docker.APIClient: untyped upstream

    @classmethod
    def from_env(cls, host: str | None = None) -> Engine:
        """Clients for ``host`` (default: DOCKER_HOST or the local socket)."""
        with api_errors("connecting to the Docker engine"):
            api = docker.APIClient(base_url=host) if host else docker.from_env().api
            api.ping()
        return cls(cli=DockerClient(host=host) if host else DockerClient(), api=api)


@contextlib.contextmanager
def engine_errors(what: str) -> Iterator[None]:
    """Turn a docker CLI failure into an OperationError that says ``what`` failed."""
    try:
        yield
    except DockerException as error:
        raise OperationError(
            f"{what} failed",
            command=[str(part) for part in error.docker_command],
            return_code=error.return_code,
            stderr=error.stderr or "",
        ) from None


@contextlib.contextmanager
def api_errors(what: str) -> Iterator[None]:
    """Turn a Docker API failure into an OperationError."""
    try:
        yield
    except ApiError as error:
        raise OperationError(f"{what} failed: {error}") from None


# --- secrets ------------------------------------------------------------------


@dataclass(frozen=True)
class SecretReport:
    name: str
    created: bool


def ensure_swarm_secrets(
    engine: Engine, stack_name: str, contents: Mapping[str, str]
) -> list[SecretReport]:
    """Create each missing Swarm secret from ``contents``; never touch existing ones."""
    with api_errors("listing Docker secrets"):
        existing = {s["Spec"]["Name"] for s in engine.api.secrets()}
    reports = []
    for name, value in contents.items():
        if name in existing:
            reports.append(SecretReport(name, created=False))
            continue
        with api_errors(f"creating secret {name}"):
            engine.api.create_secret(
                name, value.encode(), labels={STACK_LABEL: stack_name, GENERATED_LABEL: "true"}
            )
        reports.append(SecretReport(name, created=True))
    return reports


def secret_names(engine: Engine) -> set[str]:
    with api_errors("listing Docker secrets"):
        return {s["Spec"]["Name"] for s in engine.api.secrets()}


def generated_secrets(engine: Engine, stack_name: str) -> list[str]:
    """Names of the secrets swarmai generated for ``stack_name``."""
    filters = {"label": [f"{STACK_LABEL}={stack_name}", f"{GENERATED_LABEL}=true"]}
    with api_errors("listing Docker secrets"):
        return sorted(s["Spec"]["Name"] for s in engine.api.secrets(filters=filters))


def random_token(length: int = 32) -> str:
    """A random alphanumeric token (safe inside ini, JSON and pgpass files)."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    return "".join(random_source.choice(alphabet) for _ in range(length))


def write_private_file(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)


# --- stacks, services, tasks ----------------------------------------------------


def stack_services(engine: Engine, stack_name: str) -> list[dict[str, Any]]:
    """The Swarm services of a deployed stack, as the API returns them."""
    with api_errors(f"listing services of stack {stack_name}"):
        services: list[dict[str, Any]] = engine.api.services(
            filters={"label": f"{NAMESPACE_LABEL}={stack_name}"}
        )
    return services


def service_tasks(engine: Engine, service_ids: Sequence[str]) -> list[dict[str, Any]]:
    """All tasks of the given services (one API call)."""
    if not service_ids:
        return []
    with api_errors("listing tasks"):
        tasks: list[dict[str, Any]] = engine.api.tasks(filters={"service": list(service_ids)})
    return tasks


def service_log_tail(engine: Engine, service: str, lines: int = 20) -> str:
    """The last log lines of a service's latest failed task on this node (else its latest
    task), for error reports.

    Read from the task's container rather than with ``docker service logs``:
    on Docker 26 ``service logs --tail N`` never returns when N exceeds what a
    dead task's container logged (seen with an OOM-killed task).
    """
    try:
        tasks = engine.api.tasks(filters={"service": service})
        recent = sorted(tasks, reverse=True, key=lambda t: (
            t.get("Status", {}).get("State") in ("failed", "rejected", "complete"),
            str(t.get("CreatedAt", ""))))
        for task in recent:
            container = (task.get("Status", {}).get("ContainerStatus") or {}).get("ContainerID")
            if not container:
                continue
            try:
                raw = engine.api.logs(container, stdout=True, stderr=True, tail=lines)
            except ApiError:
                continue  # removed already, or on another node
            return bytes(raw).decode("utf-8", "replace")
        return "(no task of this service has logs on this node)"
    except ApiError as error:
        return f"(logs unavailable: {error})"


def nodes(engine: Engine) -> list[dict[str, Any]]:
    with api_errors("listing Swarm nodes"):
        found: list[dict[str, Any]] = engine.api.nodes()
    return found


def info(engine: Engine) -> dict[str, Any]:
    with api_errors("reading engine info"):
        found: dict[str, Any] = engine.api.info()
    return found


def deploy_stack(engine: Engine, stack_name: str, stack_file: Path, *, prune: bool) -> None:
    """``docker stack deploy`` (detached): convergence is watched by the caller.

    Run through python-on-whales' ``run`` with its output captured: its own
    ``stack.deploy`` lets "Updating service ..." lines reach our stdout, which
    belongs to the command's report (JSON with ``--output json``).
    """
    from python_on_whales.utils import run

    command = [*engine.cli.client_config.docker_cmd, "stack", "deploy", "--compose-file",
               str(stack_file), "--resolve-image", "never", *(["--prune"] if prune else []),
               stack_name]
    with engine_errors(f"deploying stack {stack_name}"):
        run(command, capture_stdout=True, capture_stderr=True)


def service_update_state(engine: Engine, service: str) -> tuple[str | None, str]:
    """The state of ``service``'s last update (``rollback_completed`` ...) and its message."""
    with api_errors(f"inspecting service {service}"):
        found = engine.api.inspect_service(service)
    status = found.get("UpdateStatus") or {}
    return status.get("State"), str(status.get("Message", ""))


def force_update_service(engine: Engine, service: str) -> None:
    """``docker service update --force --detach``: replace the tasks with their own spec.

    Output captured, as in :func:`deploy_stack`: stdout is the command's report.
    """
    from python_on_whales.utils import run

    with engine_errors(f"restarting service {service}"):
        run([*engine.cli.client_config.docker_cmd, "service", "update", "--force", "--detach",
             "--quiet", service], capture_stdout=True, capture_stderr=True)


def rollback_service(engine: Engine, service: str) -> None:
    """``docker service rollback --detach``: back to the spec before the last update."""
    from python_on_whales.utils import run

    with engine_errors(f"rolling back service {service}"):
        run([*engine.cli.client_config.docker_cmd, "service", "rollback", "--detach",
             "--quiet", service])


def remove_stack(engine: Engine, stack_name: str) -> None:
    with engine_errors(f"removing stack {stack_name}"):
        engine.cli.stack.remove(stack_name)


def stack_networks(engine: Engine, stack_name: str) -> list[str]:
    with api_errors("listing networks"):
        found = engine.api.networks(filters={"label": f"{NAMESPACE_LABEL}={stack_name}"})
    return [n["Name"] for n in found]


def stack_configs(engine: Engine, stack_name: str) -> list[str]:
    """Config names of the stack: stack-created ones and swarmai's hash-named ones."""
    with api_errors("listing configs"):
        found = engine.api.configs()
    prefix = f"{stack_name}_"
    return sorted(c["Spec"]["Name"] for c in found if c["Spec"]["Name"].startswith(prefix))


def remove_config(engine: Engine, name: str) -> bool:
    """Remove a config; False when the engine refuses (still in use)."""
    try:
        engine.api.remove_config(name)
    except ApiError:
        return False
    return True


def stack_volumes(engine: Engine, stack_name: str) -> list[str]:
    with api_errors("listing volumes"):
        found = engine.api.volumes(filters={"label": f"{NAMESPACE_LABEL}={stack_name}"})
    return sorted(v["Name"] for v in (found.get("Volumes") or []))


def volume_exists(engine: Engine, name: str) -> bool:
    with api_errors("listing volumes"):
        found = engine.api.volumes(filters={"name": name}).get("Volumes") or []
    return any(v["Name"] == name for v in found)


def utc_now() -> datetime:
    """The engine's clock as watch() compares task times with (UTC)."""
    return datetime.now(UTC)


def remove_volume(engine: Engine, name: str) -> None:
    with api_errors(f"removing volume {name}"):
        engine.api.remove_volume(name)


def containers_labelled(engine: Engine, label: str) -> list[str]:
    """IDs of all containers (running or not) carrying ``label`` (``key=value``)."""
    with api_errors("listing containers"):
        found = engine.api.containers(all=True, filters={"label": label})
    return [str(c["Id"]) for c in found]


def remove_secret(engine: Engine, name: str) -> None:
    with api_errors(f"removing secret {name}"):
        engine.api.remove_secret(name)


def missing_images(engine: Engine, references: list[str]) -> list[str]:
    """The image references not present in this engine's image store."""
    missing = []
    for reference in references:
        try:
            engine.api.inspect_image(reference)
        except ApiError:
            missing.append(reference)
    return missing


# --- compose ------------------------------------------------------------------


def _compose(engine: Engine, project: str, compose_file: Path) -> DockerClient:
    return DockerClient(
        host=engine.cli.client_config.host,
        compose_files=[compose_file],
        compose_project_name=project,
        compose_project_directory=compose_file.parent,
    )


def compose_up(engine: Engine, project: str, compose_file: Path, *,
               services: Sequence[str] | None, timeout_s: int) -> None:
    """``docker compose up -d --wait``: returns once the services are healthy."""
    with engine_errors(f"starting compose project {project}"):
        _compose(engine, project, compose_file).compose.up(
            services=list(services) if services is not None else None, detach=True, wait=True,
            wait_timeout=timeout_s, remove_orphans=services is None, pull="never", quiet=True,
        )


def compose_recreate(engine: Engine, project: str, compose_file: Path,
                     services: Sequence[str], *, timeout_s: int) -> None:
    """Re-create ``services`` (same config) and wait until they are healthy."""
    with engine_errors(f"re-creating {', '.join(services)} of compose project {project}"):
        _compose(engine, project, compose_file).compose.up(
            services=list(services), detach=True, wait=True, wait_timeout=timeout_s,
            force_recreate=True, dependencies=False, pull="never", quiet=True,
        )


def compose_down(engine: Engine, project: str, compose_file: Path, *, volumes: bool) -> None:
    with engine_errors(f"stopping compose project {project}"):
        _compose(engine, project, compose_file).compose.down(volumes=volumes, quiet=True)


def compose_version(engine: Engine) -> str:
    """The Compose v2 plugin's version, or "missing"."""
    try:
        return str(engine.cli.compose.version()).strip().split()[-1]
    except DockerException:
        return "missing"


def project_containers(engine: Engine, project: str) -> list[dict[str, Any]]:
    """Containers of a Compose project, as the API lists them."""
    with api_errors(f"listing containers of {project}"):
        found: list[dict[str, Any]] = engine.api.containers(
            all=True, filters={"label": f"{COMPOSE_PROJECT_LABEL}={project}"})
    return found


def container_log_tail(engine: Engine, container: str, lines: int = 20) -> str:
    try:
        raw = engine.api.logs(container, stdout=True, stderr=True, tail=lines)
        return bytes(raw).decode("utf-8", "replace")
    except ApiError as error:
        return f"(logs unavailable: {error})"


def inspect_container(engine: Engine, container: str) -> dict[str, Any]:
    with api_errors(f"inspecting container {container}"):
        found: dict[str, Any] = engine.api.inspect_container(container)
    return found


# --- one-off containers ---------------------------------------------------------

_WRITE_FILE = """
import os, sys
folder, name, text = sys.argv[1:4]
path = os.path.join(folder, name)
if text:
    # Written aside, then renamed: a file watcher never reads half a file.
    temporary = os.path.join(folder, "." + name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)
elif os.path.exists(path):
    os.remove(path)
"""


def write_volume_file(engine: Engine, volume: str, name: str, text: str | None, *,
                      image: str) -> None:
    """Write (``None``: remove) file ``name`` at the top of volume ``volume`` on this node."""
    result = run_oneoff(
        engine, image, ["python3", "-c", _WRITE_FILE, "/volume", name, text or ""],
        network="none", volumes=[(volume, "/volume", "rw")], user="0:0",
        what=f"writing {name} into volume {volume}",
    )
    if result.return_code != 0:
        raise OperationError(f"writing {name} into volume {volume} failed",
                             return_code=result.return_code, stderr=result.stderr)


@dataclass(frozen=True)
class OneoffResult:
    return_code: int
    stdout: str
    stderr: str


def run_oneoff(
    engine: Engine,
    image: str,
    command: Sequence[str],
    *,
    network: str,
    volumes: Sequence[tuple[str, str, str]] = (),
    envs: Mapping[str, str] | None = None,
    user: str | None = None,
    what: str,
) -> OneoffResult:
    """Run ``command`` in a throwaway container on ``network`` and return what it said.

    This is how swarmai reaches services (MLflow) that are not published to the
    world: from inside the stack's own network.  A non-zero exit of the command
    is returned, not raised; failing to start the container (exit 125-127) raises.
    """
    try:
        output = engine.cli.run(
            image, list(command), remove=True, networks=[network], volumes=list(volumes),
            envs=dict(envs or {}), user=user, pull="never",
        )
    except DockerException as error:
        if error.return_code >= 125:
            raise OperationError(
                f"{what} failed: could not run a container of {image}",
                command=[str(part) for part in error.docker_command],
                return_code=error.return_code, stderr=error.stderr or "",
            ) from None
        return OneoffResult(error.return_code, error.stdout or "", error.stderr or "")
    return OneoffResult(0, str(output), "")
