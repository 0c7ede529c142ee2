"""Compose projects and their containers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from docker.errors import DockerException as ApiError
from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from swarmai.engine.core import (
    COMPOSE_PROJECT_LABEL,
    Engine,
    api_errors,
    engine_errors,
)

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
