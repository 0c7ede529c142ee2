"""``swarmai doctor``: what this engine can do for swarmai, and what it lacks.

On a swarm manager, also every node: what the manager knows of it (role, state,
engine, generic resources) and, from a probe job of swarmai's node agent on
each node, what only the node knows (IPVS, runtimes, the NVIDIA hook's
setting, whether it could start the probe image).  With a stack: its ``nodes:``
inventory against the swarm.  Every problem about a node starts with its name.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from swarmai import engine as docker
from swarmai.engine import Engine
from swarmai.lifecycle.ipvs import kernel_has_ipvs
from swarmai.lifecycle.nodes import NodeFacts, cluster_facts, ipvs_on_all
from swarmai.render.naming import gpu_kind
from swarmai.render.nodes import NVIDIA_CONFIG_PATH
from swarmai.spec import Stack

MIN_ENGINE_MAJOR = 25  # healthcheck start_interval


@dataclass
class Diagnosis:
    engine_version: str
    compose_version: str
    swarm_state: str
    swarm_manager: bool
    ipvs: bool
    endpoint_mode: str
    runtimes: list[str]
    default_runtime: str
    swarm_resource: str = ""
    node_resources: dict[str, list[str]] = field(default_factory=dict)
    node_id: str = ""  # this engine's Swarm node
    nodes: list[NodeFacts] = field(default_factory=list)
    ipvs_all_nodes: bool | None = None  # None: no node was probed
    probe_image: str = ""
    stack: str = ""  # the stack whose nodes: were checked
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def diagnose(engine: Engine, *, stack: Stack | None = None,
             probe_image: str | None = None) -> Diagnosis:
    """This engine's facts and problems; on a manager, every node's too (probed with a
    job in ``probe_image`` on each Ready node when given), checked against ``stack``."""
    info = docker.info(engine)
    swarm = info.get("Swarm", {})
    ipvs = kernel_has_ipvs()
    diagnosis = Diagnosis(
        engine_version=str(info.get("ServerVersion", "?")),
        compose_version=docker.compose_version(engine),
        swarm_state=str(swarm.get("LocalNodeState", "inactive")),
        swarm_manager=bool(swarm.get("ControlAvailable")),
        ipvs=ipvs,
        endpoint_mode="vip (routing mesh)" if ipvs else "dnsrr + host-mode ports",
        runtimes=sorted(info.get("Runtimes", {})),
        default_runtime=str(info.get("DefaultRuntime", "runc")),
        swarm_resource=nvidia_swarm_resource(),
        node_id=str(swarm.get("NodeID", "")),
        probe_image=probe_image or "",
        stack=stack.name if stack is not None else "",
    )
    if diagnosis.swarm_manager:
        diagnosis.nodes = cluster_facts(engine, probe_image=probe_image)
        diagnosis.node_resources = {n.hostname: list(n.generic_resources)
                                    for n in diagnosis.nodes}
        diagnosis.ipvs_all_nodes = ipvs_on_all(diagnosis.nodes)
    diagnosis.problems = _problems(diagnosis) + node_problems(diagnosis, stack)
    return diagnosis


def _problems(d: Diagnosis) -> list[str]:
    problems = []
    major = d.engine_version.split(".")[0]
    if not major.isdigit() or int(major) < MIN_ENGINE_MAJOR:
        problems.append(f"engine {d.engine_version} is older than {MIN_ENGINE_MAJOR}: "
                        "run scripts/install-engine.sh")
    if d.compose_version == "missing":
        problems.append("Docker Compose v2 is missing (needed by `swarmai up`)")
    if d.swarm_state != "active":
        problems.append("this engine is not in a swarm (`docker swarm init` for `swarmai deploy`)")
    if any(n.node_id == d.node_id and n.probed for n in d.nodes):
        return problems  # this node's runtime and NVIDIA checks are made per node
    gpu_nodes = [n for n, r in d.node_resources.items() if r]
    if gpu_nodes and "nvidia" not in d.runtimes:
        problems.append("GPU resources are advertised but the nvidia runtime is not installed "
                        "here (see `swarmai nodes config`)")
    if d.swarm_resource:
        problems.append(_swarm_resource_problem(NVIDIA_CONFIG_PATH, d.swarm_resource))
    return problems


def _swarm_resource_problem(where: str, value: str) -> str:
    return (f"{where} sets swarm-resource = {value!r}: the NVIDIA hook would read swarmai's "
            "per-device counts as device ids; set it to \"\" (see `swarmai nodes config`)")


def node_problems(d: Diagnosis, stack: Stack | None) -> list[str]:
    """The problems of each node, each line starting ``node <hostname>: `` (pure)."""
    problems: list[str] = []
    for node in d.nodes:
        problems.extend(f"node {node.hostname}: {p}"
                        for p in _one_node(node, d.probe_image, local=node.node_id == d.node_id,
                                           fix=_pull_fix(stack)))
    if stack is not None:
        problems.extend(_inventory_problems(d.nodes, stack))
        problems.extend(_ipvs_problems(d, stack))
    return problems


def _pull_fix(stack: Stack | None) -> str:
    """What makes swarmai's images pullable: pushed to the stack's registry, or built."""
    if stack is not None and stack.image_registry is not None:
        return (f"push them to {stack.image_registry}: `swarmai images push FILE` where they "
                "were built; and `docker login` it here")
    return "`swarmai images build` builds them here"


def _one_node(node: NodeFacts, probe_image: str, *, local: bool, fix: str) -> list[str]:
    """A node's own problems; ``local``: this engine's node, whose version is checked above."""
    if node.state != "ready":
        return [f"is {node.state}: Swarm runs nothing there until it is Ready again"]
    problems = []
    major = node.engine_version.split(".")[0]
    if not local and (not major.isdigit() or int(major) < MIN_ENGINE_MAJOR):
        problems.append(f"engine {node.engine_version or '?'} is older than "
                        f"{MIN_ENGINE_MAJOR}: run scripts/install-engine.sh there")
    if node.pulled is False:
        problems.append(f"could not start the probe image {probe_image}: {node.probe_error} "
                        f"(every node must be able to pull swarmai's images; {fix})")
    elif node.probe_error and node.availability == "active":
        problems.append(f"probe failed: {node.probe_error}")
    if node.generic_resources and node.runtimes is not None and "nvidia" not in node.runtimes:
        problems.append("GPU resources are advertised but the nvidia runtime is not "
                        "installed there (see `swarmai nodes config`)")
    if node.nvidia_swarm_resource:
        problems.append(_swarm_resource_problem(NVIDIA_CONFIG_PATH, node.nvidia_swarm_resource))
    return problems


def _inventory_problems(nodes: list[NodeFacts], stack: Stack) -> list[str]:
    """The stack's ``nodes:`` against the swarm: every node there, every GPU advertised."""
    by_name = {node.hostname: node for node in nodes}
    problems = []
    for hostname, wanted in stack.nodes.items():
        node = by_name.get(hostname)
        if node is None:
            problems.append(f"node {hostname}: is in {stack.name}'s nodes: but not in this "
                            "swarm (join it with `docker swarm join`, or fix the hostname)")
            continue
        kinds = {resource.split("=")[0] for resource in node.generic_resources}
        for device in wanted.gpus:
            if gpu_kind(hostname, device) not in kinds:
                problems.append(f"node {hostname}: {stack.name} gives it GPU {device}, but its "
                                f"engine does not advertise {gpu_kind(hostname, device)}=1 "
                                "(node-generic-resources; see `swarmai nodes config`)")
    return problems


def _ipvs_problems(d: Diagnosis, stack: Stack) -> list[str]:
    """Nodes without IPVS when the stack would render Swarm VIPs, which need it on all."""
    vip = stack.network.ipvs is True or (stack.network.ipvs == "auto" and d.ipvs)
    if not vip:
        return []
    setting = "network.ipvs: true" if stack.network.ipvs is True else (
        "network.ipvs: auto (which probes only this manager, and found IPVS)")
    return [f"node {node.hostname}: has no IPVS, yet {setting} renders VIPs; set "
            "network.ipvs: false" for node in d.nodes if node.state == "ready"
            and node.ipvs is False]


def nvidia_swarm_resource(path: Path = Path(NVIDIA_CONFIG_PATH)) -> str:
    """The NVIDIA runtime's top-level swarm-resource setting on this node ("" when unset)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return ""
    for line in text.splitlines():
        if line.strip().startswith("["):
            break  # top-level keys end at the first table
        match = re.match(r"\s*swarm-resource\s*=\s*\"([^\"]*)\"", line)
        if match:
            return match.group(1)
    return ""


def format_report(d: Diagnosis) -> str:
    lines = [
        f"engine            {d.engine_version}",
        f"compose           {d.compose_version}",
        f"swarm             {d.swarm_state}{' (manager)' if d.swarm_manager else ''}",
        f"ipvs              {'present' if d.ipvs else 'absent'} -> endpoint mode {d.endpoint_mode}",
        f"runtimes          {', '.join(d.runtimes)} (default {d.default_runtime})",
    ]
    if d.nodes:
        probe = f"probe image {d.probe_image}" if d.probe_image else "no probe (--no-probe)"
        lines.append(f"nodes             {len(d.nodes)}; {probe}"
                     + (f"; checked against stack {d.stack}" if d.stack else ""))
    for node in d.nodes:
        lines.extend(_node_lines(node))
    lines.extend(f"problem: {p}" for p in d.problems)
    lines.append("ok" if not d.problems else f"{len(d.problems)} problem(s)")
    return "\n".join(lines)


def _node_lines(node: NodeFacts) -> list[str]:
    """Three lines per node: what the manager knows, what the probe found, its resources."""
    first = (f"node {node.hostname}: {node.role}, {node.state}, {node.availability}, "
             f"engine {node.engine_version or '?'}")
    resources = f"    generic resources: {', '.join(node.generic_resources) or 'none'}"
    if not node.probed:
        return [first, f"    not probed{': ' if node.probe_error else ''}{node.probe_error}",
                resources]
    nvidia = node.nvidia_swarm_resource
    runtimes = "?" if node.runtimes is None else ", ".join(node.runtimes)
    return [
        first,
        f"    ipvs {'present' if node.ipvs else 'absent'}; runtimes {runtimes} (default "
        f"{node.default_runtime or '?'}); nvidia swarm-resource "
        f"{'? (/etc not read)' if nvidia is None else repr(nvidia) if nvidia else 'unset'}",
        resources,
    ]
