"""Every node of the swarm, as swarmai needs to know it, and node-local cleanup.

What the manager's node inspect says (role, state, engine, generic resources,
labels) is completed by what only the node knows, asked by a ``facts`` job of
swarmai's node agent on each Ready node (see swarmai.engine.jobs).  The same
agent removes a stack's volumes, which live on whichever node ran the task.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from swarmai import engine as docker
from swarmai.engine import BindMount, Engine, NodeJobResult, SwarmNode
from swarmai.render import naming

# The node agent's command line in swarmai's server image (the published
# interface to swarmai.incontainer.nodeagent, which host code may not import).
AGENT = ("python", "-m", "swarmai.incontainer.nodeagent")
PROBE_TIMEOUT_S = 180.0  # a first pull of the server image on a slow link
VOLUMES_TIMEOUT_S = 120.0
# The engine's socket: a node's runtime list, and its volumes, are known only to
# its own engine.  The job is swarmai's own code and lives seconds.  /etc, read
# only, for the NVIDIA runtime's config.toml.
_SOCKET = BindMount(naming.DOCKER_SOCKET, naming.DOCKER_SOCKET)
FACTS_MOUNTS = (_SOCKET, BindMount("/etc", "/host/etc", read_only=True))
VOLUMES_MOUNTS = (_SOCKET,)


@dataclass(frozen=True)
class NodeFacts:
    """One node: from node inspect, and (None when not probed) from its facts job."""

    hostname: str
    node_id: str
    role: str
    state: str
    availability: str
    engine_version: str
    generic_resources: tuple[str, ...]
    labels: dict[str, str]
    ipvs: bool | None = None
    runtimes: tuple[str, ...] | None = None
    default_runtime: str | None = None
    nvidia_swarm_resource: str | None = None
    pulled: bool | None = None  # the probe image started there
    probe_error: str = ""

    @property
    def probed(self) -> bool:
        return self.runtimes is not None or self.ipvs is not None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def cluster_facts(engine: Engine, *, probe_image: str | None,
                  timeout_s: float = PROBE_TIMEOUT_S) -> list[NodeFacts]:
    """Every node, sorted by hostname; probed with a facts job in ``probe_image``
    (swarmai's server image) on each Ready node when given."""
    described = [_described(node) for node in docker.swarm_nodes(engine)]
    if probe_image is None:
        return described
    results = docker.run_on_each_node(
        engine, probe_image, [*AGENT, "facts"], purpose="facts", labels={},
        mounts=FACTS_MOUNTS, timeout_s=timeout_s)
    by_id = {result.node_id: result for result in results}
    return [with_probe(node, by_id.get(node.node_id)) for node in described]


def _described(node: SwarmNode) -> NodeFacts:
    return NodeFacts(node.hostname, node.node_id, node.role, node.state, node.availability,
                     node.engine_version, node.generic_resources, dict(node.labels))


def with_probe(node: NodeFacts, result: NodeJobResult | None) -> NodeFacts:
    """``node`` completed with what its facts job answered (pure)."""
    if result is None or result.state in ("down", "unavailable"):
        return replace(node, probe_error=result.error if result else "")
    if result.state == "rejected":  # never started: the pull, or the mounts, failed
        return replace(node, pulled=False, probe_error=result.error or "task rejected")
    if result.state == "timeout":
        return replace(node, probe_error=f"no answer: {result.error}")
    answer = _answer(result.output)
    if result.exit_code != 0 or answer is None:
        why = (result.stderr.strip().splitlines() or [result.error or "no output"])[-1]
        return replace(node, pulled=True,
                       probe_error=f"the facts job exited {result.exit_code}: {why}")
    runtimes = answer.get("runtimes")
    return replace(
        node, pulled=True, ipvs=bool(answer.get("ipvs")),
        runtimes=None if runtimes is None else tuple(str(r) for r in runtimes),
        default_runtime=answer.get("default_runtime"),
        nvidia_swarm_resource=answer.get("nvidia_swarm_resource"),
        probe_error=str(answer.get("engine_error") or ""))


def _answer(output: str) -> dict[str, Any] | None:
    """The agent's JSON object: its last stdout line that parses as one."""
    for line in reversed(output.strip().splitlines()):
        try:
            found = json.loads(line)
        except ValueError:
            continue
        if isinstance(found, dict):
            return found
    return None


def ipvs_on_all(facts: Sequence[NodeFacts]) -> bool | None:
    """True when every probed Ready node has IPVS; None when none could be probed."""
    probed = [f for f in facts if f.state == "ready" and f.ipvs is not None]
    if not probed:
        return None
    return all(f.ipvs for f in probed)


# --- volumes ------------------------------------------------------------------


@dataclass(frozen=True)
class VolumeLeft:
    name: str
    error: str  # the engine's reason (in use by a container ...)


@dataclass(frozen=True)
class NodeVolumes:
    """What removing a stack's volumes did on one node.

    ``down``: no job could run there; ``error``: the job ran but gave no answer
    (either way its volumes may all remain).
    """

    hostname: str
    label: str  # the label the volumes were selected by
    removed: tuple[str, ...] = ()
    remaining: tuple[VolumeLeft, ...] = ()
    down: bool = False
    error: str = ""


def remove_stack_volumes(engine: Engine, stack_name: str, *, image: str,
                         timeout_s: float = VOLUMES_TIMEOUT_S) -> list[NodeVolumes]:
    """Delete ``stack_name``'s volumes on every node, with a job in ``image`` on each."""
    label = f"{docker.NAMESPACE_LABEL}={stack_name}"
    results = docker.run_on_each_node(
        engine, image, [*AGENT, "remove-volumes", label], purpose="volumes",
        labels={"swarmai.job.stack": stack_name}, mounts=VOLUMES_MOUNTS, timeout_s=timeout_s)
    return [node_volumes(result, label) for result in results]


def node_volumes(result: NodeJobResult, label: str) -> NodeVolumes:
    """One node's volume report from its job's result (pure)."""
    if result.state in ("down", "unavailable"):
        return NodeVolumes(result.hostname, label, down=True, error=result.error)
    answer = _answer(result.output) if result.exit_code == 0 else None
    if answer is None:
        why = (result.stderr.strip().splitlines() or [result.error or result.state])[-1]
        return NodeVolumes(result.hostname, label, error=f"the job gave no answer: {why}")
    return NodeVolumes(
        result.hostname, label, removed=tuple(str(n) for n in answer.get("removed", ())),
        remaining=tuple(VolumeLeft(str(v["name"]), str(v["error"]))
                        for v in answer.get("remaining", ())))


def describe_leftovers(results: Sequence[NodeVolumes]) -> list[str]:
    """One line per node where volumes remain: which, why, and the command to run there."""
    lines = []
    for node in results:
        if node.down or node.error:
            why = "is not reachable" if node.down else "could not be cleaned"
            lines.append(f"node {node.hostname} {why} ({node.error}): its volumes stay; "
                         "run there: docker volume rm $(docker volume ls -q --filter "
                         f"label={node.label})")
        elif node.remaining:
            names = " ".join(v.name for v in node.remaining)
            reasons = "; ".join(f"{v.name}: {v.error}" for v in node.remaining)
            lines.append(f"node {node.hostname}: volumes stay ({reasons}); once nothing uses "
                         f"them, run there: docker volume rm {names}")
    return lines
