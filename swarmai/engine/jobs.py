"""One short-lived Swarm job per node: how the manager runs code on every node.

What only a node knows (its kernel, its engine's runtimes, whether it can pull
an image) and node-local cleanup (its volumes) need code running on that node,
and the manager reaches nodes only through Swarm.  So each node gets a service
in mode ``replicated-job`` pinned to it by node id; the job's stdout is its
answer, read back with ``docker service logs``.  The services are always
removed, and named ``swarmai-job-<purpose>-<random>`` and labelled
``swarmai.job=<purpose>`` so any a killed run left behind can be found
(`docker service ls --filter label=swarmai.job`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from docker.errors import DockerException as ApiError
from python_on_whales.exceptions import DockerException

from swarmai.engine.core import Engine, api_errors, engine_errors
from swarmai.engine.swarm import random_token
from swarmai.errors import OperationError

JOB_LABEL = "swarmai.job"
# The label Swarm puts on a task's container: its service's id.
_TASK_SERVICE = "com.docker.swarm.service.id"
JOB_PREFIX = "swarmai-job-"
_FINAL = ("complete", "failed", "rejected")
_POLL_S = 0.5
_REMOVAL_WAIT_S = 30.0

# complete/failed/rejected: the task's own final state; down: the node is not
# Ready; unavailable: Ready but drained or paused, so Swarm places nothing
# there; timeout: no final state within the time given.
JobState = Literal["complete", "failed", "rejected", "down", "unavailable", "timeout"]


@dataclass(frozen=True)
class BindMount:
    """A path of the node (``source``) seen by the job at ``target``; with ``volume``,
    ``source`` names a volume of the node instead."""

    source: str
    target: str
    read_only: bool = False
    volume: bool = False


@dataclass(frozen=True)
class JobAccess:
    """What a job may reach beyond its mounts: overlay networks to attach (attachable
    ones: a stack's), Swarm secrets mounted at ``/run/secrets/<name>``, and the user it
    runs as (``uid:gid``)."""

    networks: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    user: str = "0:0"


@dataclass(frozen=True)
class NodeJobResult:
    """What one node's job did.  ``error`` is the task's own error (a failed pull:
    "No such image: ...") or why no job ran there; ``stderr`` the job's stderr."""

    hostname: str
    node_id: str
    state: JobState
    exit_code: int | None
    output: str
    error: str
    stderr: str = ""


@dataclass(frozen=True)
class _Job:
    hostname: str
    node_id: str
    service_id: str
    name: str


def run_on_each_node(
    engine: Engine, image: str, command: Sequence[str], *, purpose: str,
    labels: Mapping[str, str], mounts: Sequence[BindMount], timeout_s: float,
    nodes: Sequence[str] | None = None,
) -> list[NodeJobResult]:
    """Run ``command`` in ``image`` once on each Ready node (or on the node ids in
    ``nodes``), all at once; one result per node, sorted by hostname.

    Nodes that are not Ready, or not Active, get a result and no job.  A job
    that has not ended after ``timeout_s`` is reported as ``timeout``.
    """
    targets, skipped = _targets(engine, nodes)
    jobs: list[_Job] = []
    try:
        # Each create returns at once (detached), so the jobs run side by side
        # while the next is created; a few subprocesses in a row cost far less
        # than a pull.
        for node in targets:
            jobs.append(_create(engine, image, command, purpose, labels, mounts,
                                node.hostname, node.node_id))
        tasks = _wait(engine, jobs, timeout_s)
        results = [_result(engine, job, tasks.get(job.service_id)) for job in jobs]
    finally:
        _remove(engine, [job.service_id for job in jobs])
    return sorted(results + skipped, key=lambda r: (r.hostname, r.node_id))


def run_job(
    engine: Engine, image: str, command: Sequence[str], *, purpose: str, node_id: str,
    labels: Mapping[str, str], mounts: Sequence[BindMount], access: JobAccess,
    timeout_s: float,
) -> NodeJobResult:
    """Run ``command`` once on node ``node_id``, with ``access`` to networks and secrets
    (what a plain container cannot get on Swarm: secrets exist only for services), wait,
    and return what it did.  The service is always removed."""
    job: _Job | None = None
    try:
        job = _create(engine, image, command, purpose, labels, mounts, node_id, node_id,
                      access)
        tasks = _wait(engine, [job], timeout_s)
        return _result(engine, job, tasks.get(job.service_id))
    finally:
        if job is not None:
            _remove(engine, [job.service_id])


def _targets(engine: Engine, wanted: Sequence[str] | None,
             ) -> tuple[list[SwarmNode], list[NodeJobResult]]:
    """The nodes to send a job to, and results for the others."""
    targets, skipped = [], []
    for node in swarm_nodes(engine):
        if wanted is not None and node.node_id not in wanted:
            continue
        if node.state != "ready":
            skipped.append(NodeJobResult(node.hostname, node.node_id, "down", None, "",
                                         f"node is {node.state}: no job sent"))
        elif node.availability != "active":
            skipped.append(NodeJobResult(node.hostname, node.node_id, "unavailable", None, "",
                                         f"node availability is {node.availability}: Swarm "
                                         "places no task there"))
        else:
            targets.append(node)
    return targets, skipped


@dataclass(frozen=True)
class SwarmNode:
    """One node as the manager sees it (``docker node inspect``)."""

    hostname: str
    node_id: str
    role: str  # manager | worker
    state: str  # ready | down | unknown | disconnected
    availability: str  # active | pause | drain
    engine_version: str
    generic_resources: tuple[str, ...]  # "kind=value", sorted
    labels: dict[str, str]


def swarm_nodes(engine: Engine) -> list[SwarmNode]:
    """Every node of the swarm, sorted by hostname."""
    with api_errors("listing Swarm nodes"):
        found: list[dict[str, Any]] = engine.api.nodes()
    return sorted((_node(node) for node in found), key=lambda n: (n.hostname, n.node_id))


def _node(node: dict[str, Any]) -> SwarmNode:
    description = node.get("Description") or {}
    resources = []
    for resource in (description.get("Resources") or {}).get("GenericResources") or []:
        spec = resource.get("DiscreteResourceSpec") or resource.get("NamedResourceSpec") or {}
        resources.append(f"{spec.get('Kind')}={spec.get('Value')}")
    spec = node.get("Spec") or {}
    return SwarmNode(
        hostname=str(description.get("Hostname", "")), node_id=str(node["ID"]),
        role=str(spec.get("Role", "worker")),
        state=str((node.get("Status") or {}).get("State", "unknown")),
        availability=str(spec.get("Availability", "active")),
        engine_version=str((description.get("Engine") or {}).get("EngineVersion", "")),
        generic_resources=tuple(sorted(resources)),
        labels={str(k): str(v) for k, v in (spec.get("Labels") or {}).items()},
    )


def _create(engine: Engine, image: str, command: Sequence[str], purpose: str,
            labels: Mapping[str, str], mounts: Sequence[BindMount], hostname: str,
            node_id: str, access: JobAccess = JobAccess()) -> _Job:
    """``docker service create --mode replicated-job`` pinned to one node, detached.

    The CLI rather than the API for ``--with-registry-auth``: the CLI hands the
    caller's registry login to the node, which may pull from a private
    registry.  ``--no-resolve-image`` as in deploy: each node pulls by tag, which
    is what the job checks.  No network is attached (the CLI cannot attach
    "none" to a service; the container lands on the node's default bridge)
    unless ``networks`` are given.
    """
    from python_on_whales.utils import run

    name = f"{JOB_PREFIX}{purpose}-{random_token(8).lower()}"
    options = ["--detach", "--quiet", "--name", name, "--mode", "replicated-job",
               "--restart-condition", "none", "--user", access.user, "--no-resolve-image",
               "--with-registry-auth", "--constraint", f"node.id=={node_id}",
               "--label", f"{JOB_LABEL}={purpose}"]
    for key, value in labels.items():
        options += ["--label", f"{key}={value}"]
    for mount in mounts:
        kind = "volume" if mount.volume else "bind"
        spec = f"type={kind},source={mount.source},target={mount.target}"
        options += ["--mount", spec + (",readonly" if mount.read_only else "")]
    for network in access.networks:
        options += ["--network", network]
    for secret in access.secrets:
        options += ["--secret", secret]
    with engine_errors(f"starting the {purpose} job on node {hostname}"):
        service_id = run([*engine.cli.client_config.docker_cmd, "service", "create",
                          *options, image, *command], capture_stdout=True, capture_stderr=True)
    return _Job(hostname, node_id, str(service_id).strip(), name)


def _wait(engine: Engine, jobs: Sequence[_Job], timeout_s: float) -> dict[str, dict[str, Any]]:
    """Service id -> its latest task, once every task is final or ``timeout_s`` passed."""
    deadline = time.monotonic() + timeout_s
    latest: dict[str, dict[str, Any]] = {}
    while jobs:
        with api_errors("listing job tasks"):
            tasks = engine.api.tasks(filters={"service": [job.service_id for job in jobs]})
        latest = {}
        for task in sorted(tasks, key=lambda t: str(t.get("CreatedAt", ""))):
            latest[str(task["ServiceID"])] = task
        if all(_state(latest.get(job.service_id)) in _FINAL for job in jobs):
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(_POLL_S)
    return latest


def _state(task: dict[str, Any] | None) -> str:
    return str((task or {}).get("Status", {}).get("State", "pending"))


def _result(engine: Engine, job: _Job, task: dict[str, Any] | None) -> NodeJobResult:
    status = (task or {}).get("Status", {})
    state = _state(task)
    container = status.get("ContainerStatus") or {}
    exit_code = container.get("ExitCode") if state in ("complete", "failed") else None
    error = str(status.get("Err", ""))
    if state not in _FINAL:
        error = f"still {state} when the time ran out" + (f": {error}" if error else "")
        return NodeJobResult(job.hostname, job.node_id, "timeout", None, "", error)
    stdout, stderr = _logs(engine, job.name) if container.get("ContainerID") else ("", "")
    return NodeJobResult(job.hostname, job.node_id, cast(JobState, state),
                         None if exit_code is None else int(exit_code), stdout, error, stderr)


def _logs(engine: Engine, service: str) -> tuple[str, str]:
    """The job's stdout and stderr, kept apart: stdout is its answer (JSON).

    A node whose log driver cannot be read back (``none``, ``syslog`` without
    dual logging) leaves its own result without an answer, not the whole run.
    """
    from python_on_whales.utils import run

    try:
        found = run([*engine.cli.client_config.docker_cmd, "service", "logs", "--raw", service],
                    capture_stdout=True, capture_stderr=True, return_stderr=True)
    except DockerException as error:
        return "", f"reading the job's logs failed: {(error.stderr or '').strip()}"
    stdout, stderr = found if isinstance(found, tuple) else (found, "")
    return str(stdout or ""), str(stderr or "")


def _remove(engine: Engine, service_ids: Sequence[str]) -> None:
    """Remove the job services, then wait until Swarm has dropped their tasks.

    Every service is tried before anything is raised: one refusal must not
    leave the others running.
    """
    failures = []
    for service_id in service_ids:
        try:
            engine.api.remove_service(service_id)
        except ApiError as error:
            if getattr(error, "status_code", None) != 404:  # 404: gone already
                failures.append(f"{service_id}: {error}")
    deadline = time.monotonic() + _REMOVAL_WAIT_S
    wanted = set(service_ids)
    while wanted and time.monotonic() < deadline:
        # Filtering by service id fails once the service is gone: list them all.  The
        # task containers on this node go after the tasks; wait for those too (other
        # nodes' agents remove theirs as soon, but only their engines can tell).
        with api_errors("listing tasks"):
            tasks_left = any(t.get("ServiceID") in wanted for t in engine.api.tasks())
            containers = engine.api.containers(all=True, filters={"label": _TASK_SERVICE})
            containers_left = any(c.get("Labels", {}).get(_TASK_SERVICE) in wanted
                                  for c in containers)
        if not tasks_left and not containers_left:
            break
        time.sleep(_POLL_S / 2)
    if failures:
        raise OperationError("removing swarmai job services failed; remove them with "
                             "`docker service rm` (all carry the label swarmai.job)",
                             stderr="\n".join(failures))
