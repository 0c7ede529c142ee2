"""Swarm: secrets, stacks, services, tasks, nodes, configs and volumes."""

from __future__ import annotations

import secrets as random_source
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from docker.errors import DockerException as ApiError

from swarmai.engine.core import (
    GENERATED_LABEL,
    NAMESPACE_LABEL,
    STACK_LABEL,
    Engine,
    api_errors,
    engine_errors,
)

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


def generated_secret_stacks(engine: Engine) -> dict[str, str]:
    """Each secret swarmai generated, on the whole swarm -> the stack it was made for."""
    with api_errors("listing Docker secrets"):
        secrets = engine.api.secrets(filters={"label": f"{GENERATED_LABEL}=true"})
    return {s["Spec"]["Name"]: s["Spec"].get("Labels", {}).get(STACK_LABEL, "")
            for s in secrets}


def generated_secrets(engine: Engine, stack_name: str) -> list[str]:
    """Names of the secrets swarmai generated for ``stack_name``."""
    filters = {"label": [f"{STACK_LABEL}={stack_name}", f"{GENERATED_LABEL}=true"]}
    with api_errors("listing Docker secrets"):
        return sorted(s["Spec"]["Name"] for s in engine.api.secrets(filters=filters))


def random_token(length: int = 32) -> str:
    """A random alphanumeric token (safe inside ini, JSON and pgpass files)."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    return "".join(random_source.choice(alphabet) for _ in range(length))


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


def info(engine: Engine) -> dict[str, Any]:
    with api_errors("reading engine info"):
        found: dict[str, Any] = engine.api.info()
    return found


def deploy_stack(engine: Engine, stack_name: str, stack_file: Path, *, prune: bool,
                 registry_auth: bool = False) -> None:
    """``docker stack deploy`` (detached): convergence is watched by the caller.

    Run through python-on-whales' ``run`` with its output captured: its own
    ``stack.deploy`` lets "Updating service ..." lines reach our stdout, which
    belongs to the command's report (JSON with ``--output json``).  With
    ``registry_auth`` the CLI's registry login goes with the services, so every
    node pulls with it.
    """
    from python_on_whales.utils import run

    command = [*engine.cli.client_config.docker_cmd, "stack", "deploy", "--compose-file",
               str(stack_file), "--resolve-image", "never", *(["--prune"] if prune else []),
               *(["--with-registry-auth"] if registry_auth else []), stack_name]
    with engine_errors(f"deploying stack {stack_name}"):
        run(command, capture_stdout=True, capture_stderr=True)


@dataclass(frozen=True)
class Reservation:
    """The generic resources one Swarm service reserves (per task)."""

    service: str
    stack: str  # "" for a service outside any stack
    kinds: tuple[str, ...]


def generic_reservations(engine: Engine) -> list[Reservation]:
    """Every service in the swarm that reserves discrete generic resources (GPUs)."""
    with api_errors("listing services"):
        services = engine.api.services()
    found = []
    for service in services:
        spec = service["Spec"]
        reservations = (spec["TaskTemplate"].get("Resources") or {}).get("Reservations") or {}
        kinds = tuple(
            str(r["DiscreteResourceSpec"]["Kind"])
            for r in reservations.get("GenericResources") or [] if "DiscreteResourceSpec" in r)
        if kinds:
            found.append(Reservation(spec["Name"], (spec.get("Labels") or {}).get(
                NAMESPACE_LABEL, ""), kinds))
    return found


def self_node_id(engine: Engine) -> str:
    """The Swarm node id of the engine the CLI talks to."""
    return str(info(engine).get("Swarm", {}).get("NodeID", ""))


def set_node_label(engine: Engine, node: str, key: str, value: str | None) -> None:
    """Add (``None``: remove) label ``key`` on Swarm node ``node`` (id or hostname)."""
    with engine_errors(f"{'removing' if value is None else 'setting'} label {key} on node "
                       f"{node}"):
        if value is None:
            engine.cli.node.update(node, rm_labels=[key])
        else:
            engine.cli.node.update(node, labels_add={key: value})


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


def networks_labelled(engine: Engine, label: str) -> list[str]:
    """Names of the networks carrying ``label`` (``key=value``)."""
    with api_errors("listing networks"):
        found = engine.api.networks(filters={"label": label})
    return sorted(str(n["Name"]) for n in found)


def volumes_labelled(engine: Engine, label: str) -> list[str]:
    """Names of this node's volumes carrying ``label`` (``key=value``)."""
    with api_errors("listing volumes"):
        found = engine.api.volumes(filters={"label": label})
    return sorted(str(v["Name"]) for v in (found.get("Volumes") or []))


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


def inspect_image(engine: Engine, reference: str) -> dict[str, Any] | None:
    """``docker image inspect`` of ``reference`` (a tag or id); None when it is not here."""
    try:
        found: dict[str, Any] = engine.api.inspect_image(reference)
    except ApiError:
        return None
    return found
