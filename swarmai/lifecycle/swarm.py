"""A stack on Docker Swarm (``swarmai deploy`` / ``rm``): the Swarm :class:`Backend`.

Deploy is safe to re-run: secrets that exist are never overwritten, configs are
content-named so an unchanged file keeps its name, and Swarm leaves a service
whose spec did not change alone, so a second deploy restarts nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml

from swarmai import engine as docker
from swarmai.engine import Engine
from swarmai.errors import OperationError, UsageError
from swarmai.files import write_private
from swarmai.lifecycle import steps
from swarmai.lifecycle.converge import wait_rolled_back, watch
from swarmai.lifecycle.logs import LogLines, LogOptions, swarm_logs
from swarmai.lifecycle.nodes import (
    NodeFacts,
    cluster_facts,
    describe_leftovers,
    ipvs_on_all,
    remove_stack_volumes,
)
from swarmai.lifecycle.placement import check_devices, ensure_state_node, state_node
from swarmai.lifecycle.plan_live import swarm_live
from swarmai.lifecycle.plan_shapes import LiveState
from swarmai.lifecycle.rotation import RotationReport, keep_reveal, require_rotatable
from swarmai.lifecycle.rotation_swarm import rotate_swarm
from swarmai.lifecycle.secrets import claimed_by_other_stacks, fresh_secrets, user_secrets
from swarmai.lifecycle.status import ServiceStatus, gpu_ids
from swarmai.lifecycle.steps import (
    Prepared,
    Progress,
    StartOptions,
    StartReport,
    StopReport,
    registry_only_file,
    registry_target,
)
from swarmai.lifecycle.tasks import Task, TaskResult, swarm_job_args
from swarmai.render.naming import state_label
from swarmai.spec import Stack


@dataclass(frozen=True)
class SwarmBackend:
    """The stack as a Swarm stack of the engine's swarm (this node must be a manager)."""

    engine: Engine
    state_dir: Path | None = None
    target: Literal["swarm"] = "swarm"

    # --- the operations -------------------------------------------------------------

    def start(self, stack: Stack, stack_file: Path, options: StartOptions,
              progress: Progress) -> StartReport:
        """Deploy ``stack`` to the Swarm, and verify every route (:func:`steps.start`)."""
        return steps.start(self, self.engine, stack, stack_file, options, progress)

    def restart(self, stack: Stack, service: str, *, timeout_s: float,
                progress: Progress) -> None:
        """Replace ``service``'s tasks with its own spec, and wait until they are healthy."""
        since = docker.utc_now()
        docker.force_update_service(self.engine, f"{stack.name}_{service}")
        watch(self.engine, stack.name, services=[service], since=since, timeout_s=timeout_s,
              progress=progress)

    def roll_back(self, stack: Stack, service: str, *, timeout_s: float,
                  progress: Progress) -> bool:
        """Return ``service`` to its spec before the last update, and wait for it: True.

        Swarm rolls a failed update back by itself; it is asked to when the
        update did not fail on its own (a timeout, or a failed gateway check).
        """
        name = f"{stack.name}_{service}"
        state, _message = docker.service_update_state(self.engine, name)
        if state in ("updating", "paused", "completed"):
            docker.rollback_service(self.engine, name)
        wait_rolled_back(self.engine, stack.name, service, timeout_s=timeout_s,
                         progress=progress)
        return True

    def run_task(self, stack: Stack, task: Task) -> TaskResult:
        """Run ``task`` as a one-off Swarm job pinned to this node (:mod:`.tasks`)."""
        own = docker.self_node_id(self.engine)
        if task.volumes:
            # Swarm volumes are node-local: the registry's live where its data node is.
            holder = state_node(stack, cluster_facts(self.engine, probe_image=None))
            if holder is None or holder.node_id != own:
                where = "no node yet" if holder is None else f"node {holder.hostname}"
                raise OperationError(
                    f"{task.what}: the registry data of stack {stack.name} is on {where}, "
                    "not on this node; run this command on that node (a manager), or "
                    "deploy the stack first")
        mounts, access = swarm_job_args(stack, task)
        result = docker.run_job(self.engine, task.image, list(task.command), purpose="task",
                                node_id=own, labels={"swarmai.task.stack": stack.name},
                                mounts=mounts, access=access, timeout_s=task.timeout_s)
        if result.state not in ("complete", "failed"):
            raise OperationError(f"{task.what}: the job did not run to its end "
                                 f"({result.state})", stderr=result.error or result.stderr)
        return TaskResult(result.exit_code or 0, result.output, result.stderr)

    def rotate_secret(self, stack: Stack, stack_file: Path, name: str, *, timeout_s: float,
                      progress: Progress) -> RotationReport:
        """Give generated secret ``name`` a new value and roll its services onto it, the
        database's password changed in the database (:mod:`.rotation_swarm`)."""
        require_rotatable(stack, name, str(stack_file))
        report = rotate_swarm(self.engine, stack, name, lambda task: self.run_task(stack, task),
                              timeout_s=timeout_s, progress=progress)
        return keep_reveal(report, steps.state_directory(stack, self.target, self.state_dir))

    def stop(self, stack: Stack, *, volumes: bool, progress: Progress,
             timeout_s: float = 120.0) -> StopReport:
        """Remove what deploy created for ``stack``; data (volumes, generated secrets) only
        with ``volumes``, since a database volume is useless without its password."""
        engine, name = self.engine, stack.name
        report = StopReport()
        if docker.stack_services(engine, name):
            progress(f"removing stack {name}")
            docker.remove_stack(engine, name)
        deadline = time.monotonic() + timeout_s
        # `stack rm` returns before tasks and networks are gone; an immediate
        # redeploy (or volume removal) would fail on them.
        while docker.stack_networks(engine, name) or self._containers(name):
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
            self._forget_other_nodes(stack, report, progress)
        else:
            report.kept_volumes, report.kept_secrets = stack_volumes, generated
        return report

    def _forget_other_nodes(self, stack: Stack, report: StopReport, progress: Progress) -> None:
        """The stack's volumes on the other nodes (model caches, a moved registry's data),
        removed by a job on each; its state label gone with the data it marked."""
        facts = cluster_facts(self.engine, probe_image=None)
        holder = state_node(stack, facts)
        if holder is not None and stack.registry.node is None:
            docker.set_node_label(self.engine, holder.node_id, state_label(stack), None)
        if len(facts) < 2:
            return  # this node only: its volumes are gone already
        progress(f"removing the volumes of {stack.name} on {len(facts)} nodes")
        image = registry_target(stack, offline=False).image
        results = remove_stack_volumes(self.engine, stack.name, image=image)
        for result in results:
            report.removed_volumes.extend(f"{v} on {result.hostname}" for v in result.removed)
        report.remaining = describe_leftovers(results)

    def rows(self, stack: Stack) -> list[ServiceStatus]:
        """Each service of the stack: replicas, health, nodes, GPUs, image."""
        return self._rows(stack, cluster_facts(self.engine, probe_image=None))

    def _rows(self, stack: Stack, facts: Sequence[NodeFacts]) -> list[ServiceStatus]:
        services = docker.stack_services(self.engine, stack.name)
        tasks = docker.service_tasks(self.engine, [s["ID"] for s in services])
        return [_row(stack, service, tasks, facts)
                for service in sorted(services, key=lambda s: s["Spec"]["Name"])]

    def notes(self, stack: Stack) -> list[str]:
        """Where the registry's data lives, and each node that is down with what waits
        for it."""
        facts = cluster_facts(self.engine, probe_image=None)
        holder = state_node(stack, facts)
        notes = [f"registry data: node {holder.hostname}" if holder is not None
                 else "registry data: no node chosen yet (the first deploy labels one)"]
        waiting = {row.service: row.waiting_for for row in self._rows(stack, facts)
                   if row.waiting_for}
        for node in facts:
            if node.state != "ready":
                services = sorted(s for s, n in waiting.items() if n == node.hostname)
                notes.append(f"node {node.hostname} is {node.state}; waiting for it: "
                             f"{', '.join(services) or 'nothing of this stack'}")
        return notes

    def live(self, stack: Stack) -> LiveState:
        """The stack's services, configs, networks and volumes, and the secret names."""
        return swarm_live(self.engine, stack)

    def logs(self, stack: Stack, services: Sequence[str], options: LogOptions) -> LogLines:
        """Each service's lines from the manager, which gathers every node's tasks."""
        return swarm_logs(self.engine, stack, services, options)

    def write_gateway_file(self, stack: Stack, name: str, text: str | None, *,
                           image: str) -> None:
        """Write (``None``: remove) ``name`` in the gateway's dynamic-config volume."""
        steps.write_gateway_file(self.engine, stack, name, text, image=image)

    # --- the steps of a deploy ------------------------------------------------------

    def check_engine(self, stack: Stack, stack_file: Path) -> None:
        """A manager, no secret generated for another stack (exit 2), and every GPU
        ``stack`` pins advertised and free (else exit 1 now, naming node, device and
        holder, rather than a task Pending forever)."""
        swarm = docker.info(self.engine).get("Swarm", {})
        if not swarm.get("ControlAvailable"):
            state = swarm.get("LocalNodeState", "inactive")
            raise UsageError(
                f"this Docker engine is not a Swarm manager (swarm state: {state}); run deploy "
                "on a manager, or `docker swarm init`, or use `swarmai up` for single-node "
                "Compose"
            )
        if problems := claimed_by_other_stacks(stack, docker.generated_secret_stacks(self.engine)):
            raise UsageError("; ".join(f"{stack_file}: {problem}" for problem in problems))
        check_devices(self.engine, stack, cluster_facts(self.engine, probe_image=None))

    def push_flags(self, offline: bool) -> str:
        return "--offline" if offline else ""

    def cluster_ipvs(self, prepared: Prepared, options: StartOptions,
                     progress: Progress) -> bool | None:
        """With ``ipvs: auto`` on several nodes: IPVS only if every node's kernel has it
        (a probe job on each); None: keep what this machine's kernel said."""
        if options.ipvs is not None or prepared.stack.network.ipvs != "auto":
            return None
        if len(docker.swarm_nodes(self.engine)) < 2:
            return None  # this machine's kernel is the only one
        facts = cluster_facts(self.engine, probe_image=prepared.server_image)
        ipvs = ipvs_on_all(facts)
        progress(f"ipvs: auto -> {ipvs} on the swarm's {len(facts)} nodes")
        return ipvs

    def ensure_secrets(self, prepared: Prepared, report: StartReport,
                       progress: Progress) -> None:
        """Create missing secrets with random values; reveal generated passwords in private
        files."""
        stack = prepared.stack
        # What swarmai cannot generate (an external store's keys, your certificate)
        # must exist already.
        existing = docker.secret_names(self.engine)
        for needed, missing in user_secrets(stack).items():
            if needed not in existing:
                raise UsageError(f"secret {needed} does not exist; {missing.create}")
        # Values only for the missing ones (a certificate may create the local CA).
        values = {name: fresh() for name, fresh in fresh_secrets(stack).items()
                  if name not in existing}
        created = docker.ensure_swarm_secrets(
            self.engine, stack.name, {name: value.content for name, value in values.items()})
        for secret in created:
            if not secret.created:
                continue
            report.created_secrets.append(secret.name)
            progress(f"created secret {secret.name} with a random value")
            value = values[secret.name]
            if value.note:
                progress(f"  {value.note}")
            if value.reveal:
                path = prepared.directory / f"{secret.name}.credentials"
                write_private(path, value.reveal)
                report.revealed.append(path)

    def start_registry(self, prepared: Prepared, services: Sequence[str], since: datetime,
                       options: StartOptions, progress: Progress) -> None:
        """Deploy the registry services alone (without --prune: the model services stay
        as they are); an unchanged registry service is not restarted."""
        stack, name = prepared.stack, prepared.stack.name
        # Before anything of the stack is deployed: a data node that is down changes
        # nothing, and the first deploy chooses (labels) the node for good.
        host = ensure_state_node(self.engine, stack, cluster_facts(self.engine,
                                                                   probe_image=None))
        progress(f"registry data of {name}: node {host}")
        docker.deploy_stack(self.engine, name, registry_only_file(prepared), prune=False,
                            registry_auth=stack.image_registry is not None)
        watch(self.engine, name, services=list(services), since=since,
              timeout_s=options.timeout_s, progress=progress)

    def start_models(self, prepared: Prepared, since: datetime, options: StartOptions,
                     progress: Progress) -> None:
        name = prepared.stack.name
        progress(f"deploying stack {name} from {prepared.main_file}")
        docker.deploy_stack(self.engine, name, prepared.main_file, prune=True,
                            registry_auth=prepared.stack.image_registry is not None)
        watch(self.engine, name, since=since, timeout_s=options.timeout_s, progress=progress)

    def route_host(self, options: StartOptions) -> str:
        return options.gateway_host

    def tidy(self, prepared: Prepared) -> list[str]:
        """Remove the stack's configs this deploy no longer uses (in-use ones are refused)."""
        document = yaml.safe_load(prepared.bundle.files[prepared.bundle.main])
        current = {c["name"] for c in document.get("configs", {}).values()}
        pruned = []
        for name in docker.stack_configs(self.engine, prepared.stack.name):
            if name not in current and docker.remove_config(self.engine, name):
                pruned.append(name)
        return pruned

    def _containers(self, name: str) -> list[str]:
        return docker.containers_labelled(self.engine, f"{docker.NAMESPACE_LABEL}={name}")


def _row(stack: Stack, service: dict[str, Any], tasks: list[dict[str, Any]],
         facts: Sequence[NodeFacts]) -> ServiceStatus:
    hostnames = {n.node_id: n.hostname for n in facts}
    spec = service["Spec"]
    own = [t for t in tasks if t["ServiceID"] == service["ID"]
           and t.get("DesiredState") == "running"]
    running = [t for t in own if t["Status"]["State"] == "running"]
    replicated = spec.get("Mode", {}).get("Replicated")
    desired = int(replicated.get("Replicas", 1)) if replicated else len(own)
    container = spec["TaskTemplate"]["ContainerSpec"]
    return ServiceStatus(
        service=spec["Name"].removeprefix(f"{stack.name}_"),
        desired=desired,
        running=len(running),
        healthy=len(running) >= desired,
        nodes=tuple(sorted({hostnames.get(t.get("NodeID", ""), "?") for t in running})),
        gpus=gpu_ids(container.get("Env") or []),
        image=container["Image"].split("@")[0],
        waiting_for=_waiting_for(spec, facts) if len(running) < desired else "",
    )


def _waiting_for(spec: dict[str, Any], facts: Sequence[NodeFacts]) -> str:
    """The node a service is pinned to (by hostname or label) when that node is not ready."""
    constraints = (spec["TaskTemplate"].get("Placement") or {}).get("Constraints") or []
    for constraint in constraints:
        key, _, value = (part.strip() for part in constraint.partition("=="))
        for node in facts:
            pinned = (key == "node.hostname" and node.hostname == value) or (
                key.startswith("node.labels.")
                and node.labels.get(key.removeprefix("node.labels.")) == value)
            if pinned and node.state != "ready":
                return node.hostname
    return ""
