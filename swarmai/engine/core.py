"""The Docker engine: the clients, and how their failures become OperationErrors.

Two clients, each for what it does best, both handed in by the caller:
python-on-whales drives the docker CLI for what only the CLI does well (stack
deploy, compose, one-off runs), and docker-py's low-level API answers the many
small reads a convergence watch makes without a subprocess each.  Every engine
failure leaves this module as an :class:`OperationError` carrying the command,
its exit code and stderr.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
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
