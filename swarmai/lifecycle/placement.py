"""Where a stack's tasks may run on a Swarm, checked before anything is deployed.

Two mistakes Swarm itself only answers with a task Pending forever:
- a pinned device another service already holds (the scheduler waits for it);
- the registry's data node gone, or not chosen yet.
These are caught here, with the node, device and holder named, and the state
node is chosen (labelled) once, so the registry's volumes never move.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from swarmai import engine as docker
from swarmai.engine import Engine, Reservation
from swarmai.errors import OperationError
from swarmai.render.naming import gpu_kind, model_service, state_label
from swarmai.spec import Stack


class Node(Protocol):
    """What placement needs to know of a Swarm node (:class:`~.nodes.NodeFacts`)."""

    @property
    def hostname(self) -> str: ...

    @property
    def node_id(self) -> str: ...

    @property
    def state(self) -> str: ...

    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def generic_resources(self) -> tuple[str, ...]: ...


def wanted_devices(stack: Stack) -> dict[str, tuple[str, str, str]]:
    """Generic-resource kind -> (service, node, device) of each device ``stack`` reserves."""
    wanted = {}
    for model in stack.models:
        if model.gpus is None or model.gpus.share or model.gpus.node is None:
            continue
        service = f"{stack.name}_{model_service(model)}"
        for device in model.gpus.devices:
            wanted[gpu_kind(model.gpus.node, device)] = (service, model.gpus.node, device)
    return wanted


def device_problems(stack: Stack, reservations: Sequence[Reservation],
                    nodes: Sequence[Node]) -> list[str]:
    """Each reserved device of ``stack`` that no node advertises or another service holds."""
    advertised = {r.partition("=")[0] for n in nodes for r in n.generic_resources}
    holders = {kind: r for r in reservations for kind in r.kinds}
    problems = []
    for kind, (service, node, device) in wanted_devices(stack).items():
        holder = holders.get(kind)
        if kind not in advertised:
            problems.append(
                f"device {device} of node {node} ({service}): no node advertises it as "
                f"{kind}; configure the node with `swarmai nodes config STACK` and restart "
                "its engine, or fix nodes:/gpus: in the stack")
        elif holder is not None and holder.service != service:
            owner = f" of stack {holder.stack}" if holder.stack else ""
            problems.append(
                f"device {device} of node {node} is held by service {holder.service}{owner}; "
                f"{service} would wait for it forever: remove that service (or its stack), "
                "or pin this model to a free device")
    return problems


def check_devices(engine: Engine, stack: Stack, nodes: Sequence[Node]) -> None:
    """Raise, naming node, device and holder, unless every device ``stack`` pins is free."""
    if not wanted_devices(stack):
        return
    problems = device_problems(stack, docker.generic_reservations(engine), nodes)
    if problems:
        raise OperationError(f"stack {stack.name} cannot get its GPUs:\n  "
                             + "\n  ".join(problems))


def state_node(stack: Stack, nodes: Sequence[Node]) -> Node | None:
    """The node that holds ``stack``'s registry data, if one is chosen already."""
    label = state_label(stack)
    for node in nodes:
        if stack.registry.node is not None and node.hostname == stack.registry.node:
            return node
        if stack.registry.node is None and node.labels.get(label) == "true":
            return node
    return None


def ensure_state_node(engine: Engine, stack: Stack, nodes: Sequence[Node]) -> str:
    """The hostname of ``stack``'s data node; label this node on the first deploy.

    Never moves the label: the data is on the node that has it.  A data node
    that is down stops the deploy, which would otherwise wait for it.
    """
    node = state_node(stack, nodes)
    if node is None and stack.registry.node is not None:
        raise OperationError(f"registry.node {stack.registry.node} is not a node of this "
                             "swarm (`docker node ls` lists them)")
    if node is None:
        own = docker.self_node_id(engine)
        docker.set_node_label(engine, own, state_label(stack), "true")
        return next((n.hostname for n in nodes if n.node_id == own), own)
    if node.state != "ready":
        raise OperationError(
            f"the registry data of stack {stack.name} lives on node {node.hostname}, which is "
            f"{node.state}: start that node again (its volumes are there)")
    return node.hostname
