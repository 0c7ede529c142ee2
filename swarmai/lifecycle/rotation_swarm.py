"""Secret rotation on Swarm: secrets are engine objects, services are re-pointed at them,
and the database is reached by a job on the stack's attachable registry network.

The steps themselves are :func:`swarmai.lifecycle.rotation.rotate`'s; this
module only says how each one is done on a Swarm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from swarmai import engine as docker
from swarmai.engine import Engine, JobAccess
from swarmai.errors import OperationError, UsageError
from swarmai.lifecycle.converge import watch
from swarmai.lifecycle.rotation import (
    RotationReport,
    fresh_value,
    is_database_password,
    next_name,
    rotate,
)
from swarmai.lifecycle.rotation_db import ALTER_SCRIPT, PROBE_SCRIPT, parse_probe
from swarmai.lifecycle.steps import Progress
from swarmai.render import naming
from swarmai.spec import Stack

_JOB_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class SwarmVault:
    """The stack's secrets as Swarm secrets, mounted by its services."""

    engine: Engine
    stack_name: str
    timeout_s: float
    progress: Progress

    def exists(self, name: str) -> bool:
        return docker.secret_labels(self.engine, name) is not None

    def create(self, name: str, value: str) -> None:
        docker.create_generated_secret(self.engine, self.stack_name, name, value)

    def remove(self, name: str) -> None:
        docker.remove_secret_if_present(self.engine, name)

    def sources(self, target: str) -> dict[str, str]:
        return {u.service: u.source
                for u in docker.secret_users(self.engine, self.stack_name, target)}

    def point(self, services: Sequence[str], target: str, source: str) -> None:
        """The servers (database, S3 store) first, MLflow once they are healthy: an MLflow
        started beside them spends its health window waiting for them, and on a busy
        host runs out of it (seen: Swarm killed it as unhealthy and rolled it back)."""
        client = f"{self.stack_name}_{naming.MLFLOW}"
        for wave in ([s for s in services if s != client], [s for s in services if s == client]):
            if wave:
                self._point(wave, target, source)

    def _point(self, services: Sequence[str], target: str, source: str) -> None:
        since = docker.utc_now()
        now = self.sources(target)
        for service in services:
            docker.swap_service_secret(self.engine, service, old=now[service], new=source,
                                       target=target)
        prefix = f"{self.stack_name}_"
        watch(self.engine, self.stack_name, services=[s.removeprefix(prefix) for s in services],
              since=since, timeout_s=self.timeout_s, progress=self.progress)


@dataclass(frozen=True)
class SwarmDatabase:
    """The stack's Postgres, asked through one-off jobs of its own image on this node."""

    engine: Engine
    stack_name: str

    def accepts(self, secret: str) -> bool:
        result = self._job("password-check", PROBE_SCRIPT, [secret])
        if result.exit_code != 0:
            raise self._failed(f"checking the database password of secret {secret}", result)
        return parse_probe(result.output, secret)

    def set_password(self, current: str, new: str) -> None:
        result = self._job("password-change", ALTER_SCRIPT, [current, new])
        if result.exit_code != 0:
            raise self._failed(f"changing the database password to secret {new}", result)

    def _job(self, purpose: str, script: str, secrets: list[str]) -> docker.NodeJobResult:
        return docker.run_job(
            self.engine, self._image(), ["sh", "-c", script, "sh", *secrets],
            purpose=purpose, labels={docker.STACK_LABEL: self.stack_name},
            node_id=docker.self_node_id(self.engine), mounts=(),
            access=JobAccess(networks=(f"{self.stack_name}_{naming.REGISTRY_NET}",),
                             secrets=tuple(secrets)),
            timeout_s=_JOB_TIMEOUT_S)

    def _image(self) -> str:
        """The running database's own image: it has psql, and this node has it."""
        wanted = f"{self.stack_name}_{naming.POSTGRES}"
        for service in docker.stack_services(self.engine, self.stack_name):
            if service["Spec"]["Name"] == wanted:
                return str(service["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"])
        raise OperationError(f"service {wanted} is not running: deploy the stack first")

    @staticmethod
    def _failed(what: str, result: docker.NodeJobResult) -> OperationError:
        return OperationError(f"{what} failed ({result.state}): {result.error}".rstrip(": "),
                              return_code=result.exit_code, stderr=result.stderr)


def rotate_swarm(engine: Engine, stack: Stack, name: str, *, timeout_s: float,
                 progress: Progress) -> RotationReport:
    """Rotate ``name`` (already checked to be one swarmai generates for ``stack``), refusing a
    secret of that name that swarmai did not create for this stack."""
    labels = docker.secret_labels(engine, name)
    if labels is None:  # a run killed between removing and re-creating NAME
        labels = docker.secret_labels(engine, next_name(name))
    if labels is None:
        raise UsageError(f"secret {name} does not exist: deploy the stack first")
    if labels.get(docker.STACK_LABEL) != stack.name or labels.get(
            docker.GENERATED_LABEL) != "true":
        raise UsageError(
            f"secret {name} was not generated by swarmai for stack {stack.name} (its labels "
            f"lack {docker.STACK_LABEL}={stack.name}, {docker.GENERATED_LABEL}=true): it is "
            "yours, so rotate it yourself (docker secret create, docker service update "
            "--secret-rm/--secret-add)")
    database = SwarmDatabase(engine, stack.name) if is_database_password(stack, name) else None
    vault = SwarmVault(engine, stack.name, timeout_s, progress)
    return rotate(vault, name, fresh_value(stack, name), database, progress)
