"""Spell the service plans as a single-node Docker Compose file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from swarmai.render import common, naming
from swarmai.render.gateway import ready_check_labels, router_labels
from swarmai.render.plan import ServicePlan
from swarmai.spec import Stack

SECRETS_DIR = "secrets"
FILES_LABEL = "swarmai.files-hash"


def compose_document(stack: Stack, plans: list[ServicePlan],
                     files: Mapping[str, str]) -> dict[str, Any]:
    """The Compose file for ``plans``; secrets are read from ``secrets/<name>``;
    ``files`` holds the bundle's file contents by path."""
    names = {p.name for p in plans}
    mounted = {f.key: f.path for p in plans for f in p.files}
    secrets = dict.fromkeys(s for p in plans for s in p.secrets)
    return {
        "name": stack.name,
        "services": {p.name: _service(stack, p, names, files) for p in plans},
        "networks": {naming.MODELS_NET: {}, naming.REGISTRY_NET: {},
                     naming.ENGINE_NET: {"internal": True}},
        "volumes": {key: {} for key in common.volume_keys(plans)},
        "configs": {key: {"file": f"./{path}"} for key, path in mounted.items()},
        "secrets": {name: {"file": f"./{SECRETS_DIR}/{name}"} for name in secrets},
    }


def _service(stack: Stack, plan: ServicePlan, names: set[str],
             files: Mapping[str, str]) -> dict[str, Any]:
    service = common.base_service(plan)
    if plan.least_privilege:
        # Compose only: `docker stack deploy` drops security_opt without a word
        # (Docker 26), so a Swarm service relies on having no capabilities.
        service["security_opt"] = ["no-new-privileges:true"]
    labels = dict(plan.labels)
    if plan.files:
        service["configs"] = [{"source": f.key, "target": f.target} for f in plan.files]
        # Compose bind-mounts each file, and the writer replaces a changed file
        # (a new inode) that a running container never sees; nor does Compose
        # re-create a container for a file's content.  A label that changes
        # with the contents makes it re-create the service, as Swarm does with
        # its content-named configs.
        labels[FILES_LABEL] = naming.content_hash(
            "".join(f"{f.target}\n{files[f.path]}" for f in plan.files))
    if plan.routed_model is not None and plan.route_port is not None:
        labels.update(router_labels(stack, plan.routed_model, plan.route_port, "compose"))
        if plan.ready_path is not None:
            labels.update(ready_check_labels(stack, plan.routed_model, plan.ready_path))
    if labels:
        service["labels"] = labels
    if plan.ports:
        service["ports"] = [
            {"target": p.target, "published": str(p.published), "protocol": "tcp"}
            for p in plan.ports
        ]
    depends = [d for d in plan.depends_on if d in names]
    if depends:
        service["depends_on"] = {d: {"condition": "service_healthy"} for d in depends}
    if plan.shm_size is not None:
        service["shm_size"] = plan.shm_size
    service["restart"] = "unless-stopped"
    service["deploy"] = _deploy(plan)
    return service


def _deploy(plan: ServicePlan) -> dict[str, Any]:
    deploy: dict[str, Any] = {"replicas": 1 if plan.global_mode else plan.replicas}
    resources: dict[str, Any] = {}
    if limits := common.limits(plan.resources):
        resources["limits"] = limits
    reservations = common.reservations(plan.resources)
    if plan.gpus is not None:
        # On one host the devices are that host's ids; gpus.node is ignored.
        reservations["devices"] = [
            {"driver": "nvidia", "device_ids": list(plan.gpus.devices), "capabilities": ["gpu"]}
        ]
    if reservations:
        resources["reservations"] = reservations
    if resources:
        deploy["resources"] = resources
    return deploy
