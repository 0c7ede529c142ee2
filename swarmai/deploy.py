"""``swarmai deploy`` and ``swarmai rm``: a stack's lifecycle on Docker Swarm.

Deploy is safe to re-run: secrets that exist are never overwritten, configs are
content-named so an unchanged file keeps its name, and Swarm leaves a service
whose spec did not change alone, so a second deploy restarts nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from swarmai import engine as docker
from swarmai.converge import watch
from swarmai.engine import Engine
from swarmai.errors import OperationError, UsageError
from swarmai.gateway_check import check_routes
from swarmai.prepare import (
    Prepared,
    StartReport,
    external_secret_hint,
    pin,
    prepare,
    registry_only_file,
    registry_services,
    require_local_images,
    secret_values,
)
from swarmai.registry_ops import require_models
from swarmai.spec import Stack

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DeployOptions:
    offline: bool = False
    state_dir: Path | None = None
    ipvs: bool | None = None
    timeout_s: float = 600.0
    gateway_host: str = "127.0.0.1"


def deploy(engine: Engine, stack: Stack, stack_file: Path, options: DeployOptions,
           progress: Progress) -> StartReport:
    """Deploy ``stack`` to the Swarm ``engine`` manages, and verify every route."""
    started = datetime.now(UTC)
    _require_manager(engine)
    prepared = prepare(stack, "swarm", offline=options.offline, state_dir=options.state_dir,
                       ipvs=options.ipvs)
    report = StartReport(prepared)
    require_local_images(engine, prepared, offline=options.offline)
    _ensure_secrets(engine, prepared, report, progress)
    _registry_first(engine, prepared, started, options, progress)
    serving = require_models(engine, prepared, stack_file, "--offline" if options.offline else "")
    prepared = pin(prepared, serving)
    report.prepared = prepared
    progress(f"deploying stack {stack.name} from {prepared.main_file}")
    docker.deploy_stack(engine, stack.name, prepared.main_file, prune=True)
    watch(engine, stack.name, since=started, timeout_s=options.timeout_s, progress=progress)
    report.routes = check_routes(prepared.stack, options.gateway_host, progress=progress)
    report.pruned_configs = _prune_configs(engine, prepared)
    report.seconds = (datetime.now(UTC) - started).total_seconds()
    return report


def _require_manager(engine: Engine) -> None:
    swarm = docker.info(engine).get("Swarm", {})
    if not swarm.get("ControlAvailable"):
        state = swarm.get("LocalNodeState", "inactive")
        raise UsageError(
            f"this Docker engine is not a Swarm manager (swarm state: {state}); run deploy on "
            "a manager, or `docker swarm init`, or use `swarmai up` for single-node Compose"
        )


def _ensure_secrets(engine: Engine, prepared: Prepared, report: StartReport,
                    progress: Progress) -> None:
    """Create missing secrets with random values; reveal generated passwords in private files."""
    stack = prepared.stack
    values = secret_values(stack)
    created = docker.ensure_swarm_secrets(
        engine, stack.name, {name: value.content for name, value in values.items()})
    for secret in created:
        if not secret.created:
            continue
        report.created_secrets.append(secret.name)
        progress(f"created secret {secret.name} with a random value")
        reveal = values[secret.name].reveal
        if reveal:
            path = prepared.directory / f"{secret.name}.credentials"
            docker.write_private_file(path, reveal)
            report.revealed.append(path)
    # An external store's keys cannot be generated: they must exist already.
    needed = stack.storage.credentials_secret
    if stack.storage.backend == "external" and needed not in docker.secret_names(engine):
        raise UsageError(f"secret {needed} does not exist; " + external_secret_hint(stack))


def _registry_first(engine: Engine, prepared: Prepared, started: datetime,
                    options: DeployOptions, progress: Progress) -> None:
    """Bring the registry up to date first, so the models can be checked in MLflow.

    Without --prune this leaves the model services alone; an unchanged registry
    service is not restarted.
    """
    wanted = registry_services(prepared)
    progress(f"starting the registry of {prepared.stack.name}: {', '.join(wanted)}")
    docker.deploy_stack(engine, prepared.stack.name, registry_only_file(prepared), prune=False)
    watch(engine, prepared.stack.name, services=wanted, since=started,
          timeout_s=options.timeout_s, progress=progress)


def _prune_configs(engine: Engine, prepared: Prepared) -> list[str]:
    """Remove the stack's configs this deploy no longer uses (in-use ones are refused)."""
    import yaml

    document = yaml.safe_load(prepared.bundle.files[prepared.bundle.main])
    current = {c["name"] for c in document.get("configs", {}).values()}
    pruned = []
    for name in docker.stack_configs(engine, prepared.stack.name):
        if name not in current and docker.remove_config(engine, name):
            pruned.append(name)
    return pruned


@dataclass
class RemoveReport:
    removed_volumes: list[str] = field(default_factory=list)
    removed_secrets: list[str] = field(default_factory=list)
    kept_volumes: list[str] = field(default_factory=list)
    kept_secrets: list[str] = field(default_factory=list)


def remove(engine: Engine, stack: Stack, *, volumes: bool, progress: Progress,
           timeout_s: float = 120.0) -> RemoveReport:
    """Remove what deploy created for ``stack``; data (volumes, generated secrets) only
    with ``volumes``, since a database volume is useless without its password."""
    import time

    name = stack.name
    report = RemoveReport()
    if docker.stack_services(engine, name):
        progress(f"removing stack {name}")
        docker.remove_stack(engine, name)
    deadline = time.monotonic() + timeout_s
    # `stack rm` returns before tasks and networks are gone; an immediate
    # redeploy (or volume removal) would fail on them.
    while docker.stack_networks(engine, name) or _stack_containers(engine, name):
        if time.monotonic() > deadline:
            raise OperationError(f"stack {name} was not gone after {timeout_s:.0f} s")
        time.sleep(0.5)
    for config in docker.stack_configs(engine, name):
        docker.remove_config(engine, config)
    stack_volumes = docker.stack_volumes(engine, name)
    generated = docker.generated_secrets(engine, name)
    if volumes:
        for volume in stack_volumes:
            docker.remove_volume(engine, volume)
        for secret in generated:
            docker.remove_secret(engine, secret)
        report.removed_volumes, report.removed_secrets = stack_volumes, generated
    else:
        report.kept_volumes, report.kept_secrets = stack_volumes, generated
    return report


def _stack_containers(engine: Engine, name: str) -> list[str]:
    return docker.containers_labelled(engine, f"{docker.NAMESPACE_LABEL}={name}")
