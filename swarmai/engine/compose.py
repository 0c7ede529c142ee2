"""Compose projects and their containers."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from docker.errors import DockerException as ApiError
from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException
from python_on_whales.utils import run
from requests.exceptions import RequestException

from swarmai.engine.core import (
    COMPOSE_PROJECT_LABEL,
    Engine,
    api_errors,
    engine_errors,
)
from swarmai.engine.swarm import networks_labelled, remove_volume, volumes_labelled
from swarmai.errors import OperationError

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


def compose_scale(engine: Engine, project: str, compose_file: Path, service: str, *,
                  count: int, timeout_s: int) -> None:
    """Run ``count`` containers of ``service``, keeping the ones there are (even with an
    older config): the new ones start beside them.  Returns once all are healthy."""
    with engine_errors(f"starting new containers of {service} in compose project {project}"):
        _compose(engine, project, compose_file).compose.up(
            services=[service], detach=True, wait=True, wait_timeout=timeout_s,
            # Not --no-deps: Compose then hashes the service without its
            # depends_on, and the next `up` would re-create the new containers.
            scales={service: count}, recreate=False, pull="never", quiet=True,
        )


def compose_config_hashes(engine: Engine, project: str, compose_file: Path,
                          services: Sequence[str]) -> dict[str, str]:
    """The config hash Compose would label each of ``services``' containers with now:
    a container whose label differs would be re-created by ``up``."""
    if not services:
        return {}
    client = _compose(engine, project, compose_file)
    command = [*client.client_config.docker_compose_cmd, "config", "--hash", ",".join(services)]
    with engine_errors(f"hashing the services of compose project {project}"):
        output = str(run(command))
    pairs = (line.split() for line in output.splitlines() if line.strip())
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}


def compose_down(engine: Engine, project: str, compose_file: Path, *, volumes: bool) -> None:
    with engine_errors(f"stopping compose project {project}"):
        _compose(engine, project, compose_file).compose.down(volumes=volumes, quiet=True)


def remove_project_by_labels(engine: Engine, project: str, *, volumes: bool) -> list[str]:
    """Remove what Compose labelled as ``project`` (containers, networks and, with
    ``volumes``, volumes) when its compose file is gone: an interrupted run, a lost or
    different state directory.  Returns what was removed, ``kind name`` each."""
    label = f"{COMPOSE_PROJECT_LABEL}={project}"
    removed: list[str] = []
    for container in project_containers(engine, project):
        remove_container(engine, str(container["Id"]))
        removed.append(f"container {str(container['Names'][0]).lstrip('/')}")
    for network in networks_labelled(engine, label):
        with api_errors(f"removing network {network}"):
            engine.api.remove_network(network)
        removed.append(f"network {network}")
    for volume in volumes_labelled(engine, label) if volumes else []:
        remove_volume(engine, volume)
        removed.append(f"volume {volume}")
    return removed


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


def signal_container(engine: Engine, container: str, signal: str) -> None:
    with api_errors(f"sending {signal} to container {container[:12]}"):
        engine.api.kill(container, signal=signal)


def wait_removed(engine: Engine, container: str, *, timeout_s: float) -> None:
    """Wait until ``container`` exits (SIGKILL after ``timeout_s``), then remove it."""
    try:
        engine.api.wait(container, timeout=timeout_s)
    except ApiError:
        pass  # gone already
    except RequestException:  # the wait timed out: past its grace period
        with contextlib.suppress(ApiError):
            engine.api.kill(container, signal="SIGKILL")
    remove_container(engine, container)


def remove_container(engine: Engine, container: str) -> None:
    """Remove ``container`` now, running or not; one already gone is fine."""
    try:
        engine.api.remove_container(container, force=True)
    except ApiError as error:
        if getattr(error, "status_code", None) != 404:
            raise OperationError(f"removing container {container[:12]} failed: {error}") from None


def inspect_container(engine: Engine, container: str) -> dict[str, Any]:
    with api_errors(f"inspecting container {container}"):
        found: dict[str, Any] = engine.api.inspect_container(container)
    return found
