"""Spell the service plans as a ``docker stack deploy`` file.

Swarm differs from Compose where it matters for serving: labels live under
``deploy.labels`` (Traefik ignores container labels on Swarm), GPUs are
per-device discrete generic resources plus a node constraint, updates roll
start-first and roll back on failure, and without IPVS every service uses
``dnsrr`` with host-mode published ports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from swarmai.render import common, naming
from swarmai.render.gateway import ready_check_labels, router_labels
from swarmai.render.plan import ServicePlan
from swarmai.spec import Gpus, Stack, size_bytes

# Past the healthcheck window, a task that is still not healthy has failed;
# a monitor shorter than that would declare a bad update successful.
_MONITOR_MARGIN_S = 10

# The registry's services: their volumes are node-local, so they stay on one node.
STATEFUL_ROLES = ("registry", "database", "storage")


def swarm_document(
    stack: Stack, plans: list[ServicePlan], files: Mapping[str, str], *, ipvs: bool
) -> dict[str, Any]:
    """The stack file for ``plans``; ``files`` holds the bundle's file contents by path."""
    config_files = {f.key: f.path for p in plans for f in p.files}
    secrets = dict.fromkeys(s for p in plans for s in p.secrets)
    overlay = {"driver": "overlay", "attachable": True}
    return {
        # 3.12 is the oldest schema with healthcheck.start_interval (Docker 25+),
        # which lets a task turn healthy a second after it is ready.
        "version": "3.12",
        "services": {p.name: _service(stack, p, ipvs=ipvs) for p in plans},
        "networks": {naming.MODELS_NET: dict(overlay), naming.REGISTRY_NET: dict(overlay),
                     # Only the gateway and the engine proxy: nothing can join it.
                     naming.ENGINE_NET: {"driver": "overlay", "internal": True}},
        "volumes": {key: {} for key in common.volume_keys(plans)},
        "configs": {
            key: {"name": naming.config_name(stack, key, files[path]), "file": f"./{path}"}
            for key, path in config_files.items()
        },
        # Created by `swarmai deploy` (random values) when missing; never overwritten.
        "secrets": {name: {"external": True} for name in secrets},
    }


def _service(stack: Stack, plan: ServicePlan, *, ipvs: bool) -> dict[str, Any]:
    service = common.base_service(plan)
    if plan.gpus is not None:
        # Only these ids reach the container, whatever the NVIDIA hook's
        # swarm-resource setting says (see `swarmai nodes config`).
        service["environment"]["NVIDIA_VISIBLE_DEVICES"] = ",".join(plan.gpus.devices)
    if plan.files:
        service["configs"] = [{"source": f.key, "target": f.target} for f in plan.files]
    if plan.shm_size is not None:
        # `stack deploy` ignores shm_size (an "unsupported option"), so mount a
        # tmpfs of that size at /dev/shm: the engine then skips its own 64 MB
        # one (moby's setupIPCDirs checks HasMountFor("/dev/shm")).
        service.setdefault("volumes", []).append({
            "type": "tmpfs", "target": naming.SHM, "tmpfs": {"size": size_bytes(plan.shm_size)},
        })
    if plan.ports:
        mode = "ingress" if ipvs else "host"
        service["ports"] = [
            {"target": p.target, "published": p.published, "protocol": "tcp", "mode": mode}
            for p in plan.ports
        ]
    service["deploy"] = _deploy(stack, plan, ipvs=ipvs)
    return service


def _deploy(stack: Stack, plan: ServicePlan, *, ipvs: bool) -> dict[str, Any]:
    deploy: dict[str, Any] = {"mode": "global"}
    if not plan.global_mode:
        deploy = {"mode": "replicated", "replicas": plan.replicas}
    if not ipvs:
        deploy["endpoint_mode"] = "dnsrr"
    labels = {**plan.labels, "swarmai.stack": stack.name}
    if plan.routed_model is not None and plan.route_port is not None:
        labels.update(router_labels(stack, plan.routed_model, plan.route_port, "swarm"))
        if plan.ready_path is not None:
            labels.update(ready_check_labels(stack, plan.routed_model, plan.ready_path))
    deploy["labels"] = labels
    placement: dict[str, Any] = {}
    if constraints := _constraints(stack, plan):
        placement["constraints"] = constraints
    if plan.role == "model" and plan.placement_node is None and not plan.global_mode:
        # Replicas of an unpinned model on as many nodes as possible: a lost
        # node then takes only its share of them.
        placement["preferences"] = [{"spread": "node.id"}]
    if placement:
        deploy["placement"] = placement
    resources: dict[str, Any] = {}
    if limits := common.limits(plan.resources):
        resources["limits"] = limits
    reservations = common.reservations(plan.resources)
    if plan.gpus is not None and not plan.gpus.share:
        # A shared device is not reserved: one discrete unit cannot go to two
        # services.  Exclusive ones are, so the scheduler refuses double-booking.
        reservations["generic_resources"] = _gpu_reservations(plan.gpus)
    if reservations:
        resources["reservations"] = reservations
    if resources:
        deploy["resources"] = resources
    deploy["restart_policy"] = {"condition": "any", "delay": "5s", "window": "60s"}
    deploy.update(_roll_policy(plan))
    return deploy


def _constraints(stack: Stack, plan: ServicePlan) -> list[str]:
    constraints = []
    if plan.role in STATEFUL_ROLES:
        constraints.append(naming.state_constraint(stack))
    if plan.manager_only:
        constraints.append("node.role == manager")
    if plan.placement_node is not None:
        constraints.append(f"node.hostname == {plan.placement_node}")
    return constraints


def _gpu_reservations(gpus: Gpus) -> list[dict[str, Any]]:
    assert gpus.node is not None  # the spec checks require a node on Swarm
    return [
        {"discrete_resource_spec": {"kind": naming.gpu_kind(gpus.node, device), "value": 1}}
        for device in gpus.devices
    ]


def _roll_policy(plan: ServicePlan) -> dict[str, Any]:
    order = "start-first" if plan.start_first else "stop-first"
    window = plan.healthcheck.window_s if plan.healthcheck else 0
    monitor = f"{window + _MONITOR_MARGIN_S}s"
    return {
        "update_config": {
            "parallelism": 1,
            "delay": "0s",
            "order": order,
            "failure_action": "rollback",
            "monitor": monitor,
            "max_failure_ratio": 0,
        },
        "rollback_config": {
            "parallelism": 1,
            "order": order,
            "failure_action": "pause",
            "monitor": monitor,
        },
    }
