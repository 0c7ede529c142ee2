"""Compose rollouts without a gap: the new containers beside the old, the old drained.

``docker compose up`` replaces a changed container stop-first, so a model's
route fails while its new server loads.  For a model server swarmai does what
a Swarm start-first update does, with Compose's own scale mechanics:

    1. scale the service to old + N containers with --no-recreate: N containers
       of the new config start beside the old ones; wait until they are healthy
    2. wait until the gateway routes to each new one (Traefik's server-up gauge,
       fed by its active health check on the server's readiness path)
    3. one old container at a time: SIGTERM (the FastAPI server turns unready and
       keeps answering for DEREGISTER_S), wait until the gateway has taken it out,
       wait for it to exit (within its stop grace period), remove it

Compose then finds the service at its declared scale, every container on the
current config, and leaves it alone.  A model holding an exclusive GPU cannot
run twice, and one whose route changes cannot be routed two ways at once: both
are replaced stop-first by the `up` that follows.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from swarmai import engine as docker
from swarmai.engine import Engine
from swarmai.errors import OperationError
from swarmai.lifecycle.plan_shapes import unescape
from swarmai.render import naming
from swarmai.render.runtimes import DEREGISTER_S, serving_port
from swarmai.spec import Model, Stack

Progress = Callable[[str], None]

_SERVICE_LABEL = "com.docker.compose.service"
_HASH_LABEL = "com.docker.compose.config-hash"
# Traefik reloads at most every 2 s (providersThrottleDuration) and then
# probes each server once a second: a new container is routed well within this.
_ROUTED_TIMEOUT_S = 30.0
_POLL_S = 0.25
_SERVER_UP = re.compile(
    r'^traefik_service_server_up\{(?P<labels>[^}]*)\}\s+(?P<value>[0-9.eE+-]+)\s*$')
_LABEL = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class Replica:
    """One running container of a Compose service, as the gateway addresses it."""

    container: str
    url: str  # http://IP:PORT on the models network


def servers_up(metrics: str, service: str) -> dict[str, bool]:
    """Traefik's view of ``service``'s servers (``url -> up``) from its Prometheus text."""
    found: dict[str, bool] = {}
    for line in metrics.splitlines():
        match = _SERVER_UP.match(line.strip())
        if match is None:
            continue
        labels = dict(_LABEL.findall(match["labels"]))
        if labels.get("service") == service and "url" in labels:
            found[labels["url"]] = float(match["value"]) == 1.0
    return found


def models_to_roll(engine: Engine, stack: Stack, compose_file: Path,
                   *, force: Iterable[str] = ()) -> list[Model]:
    """The models whose running containers differ from the current config (or are in
    ``force``) and can run twice at once (no exclusive GPU, the same route), while
    the gateway runs."""
    candidates = [m for m in stack.models if m.gpus is None or m.gpus.share]
    running = _running_by_service(engine, stack.name)
    if not running.get(naming.GATEWAY):
        return []  # nothing is routed: the `up` that follows starts it all
    services = [naming.model_service(m) for m in candidates
                if running.get(naming.model_service(m))]
    hashes = docker.compose_config_hashes(engine, stack.name, compose_file, services)
    declared = yaml.safe_load(compose_file.read_text(encoding="utf-8"))["services"]
    forced = set(force)
    return [m for m in candidates if (service := naming.model_service(m)) in hashes
            and same_routing(declared[service].get("labels", {}), running[service])
            and (service in forced
                 or any(c["Labels"].get(_HASH_LABEL) != hashes[service]
                        for c in running[service]))]


def same_routing(labels: dict[str, str], containers: list[dict[str, Any]]) -> bool:
    """Whether ``containers`` carry the gateway labels ``labels`` declares.

    Old and new containers side by side must define the route alike: Traefik
    drops a router that two containers define differently, and with it the
    route.  A changed route (or chain) is therefore re-created stop-first: the
    old route goes away with its containers anyway.
    """
    # The compose file doubles a label's `$` (a route rule's regexp has one);
    # the container carries what Compose made of it.
    wanted = {k: unescape(str(v)) for k, v in labels.items() if k.startswith("traefik.")}
    return all({k: v for k, v in c["Labels"].items() if k.startswith("traefik.")} == wanted
               for c in containers)


def roll(engine: Engine, stack: Stack, compose_file: Path, model: Model, *,
         timeout_s: float, progress: Progress, describe_failure: Callable[[], str]) -> None:
    """Replace ``model``'s running containers with new ones, never leaving its route
    without a ready server (the steps above)."""
    service = naming.model_service(model)
    old = _replicas(engine, stack, service, model)
    old_ids = {r.container for r in old}
    progress(f"rolling {service}: {model.replicas} new container(s) beside the "
             f"{len(old)} running")
    gateway = _Gateway(engine, stack, model)
    try:
        docker.compose_scale(engine, stack.name, compose_file, service,
                             count=len(old) + model.replicas, timeout_s=int(timeout_s))
        new = [r for r in _replicas(engine, stack, service, model)
               if r.container not in old_ids]
        gateway.wait({r.url for r in new}, up=True, progress=progress)
    except OperationError as error:
        # The old containers never stopped serving; the new ones go, so the
        # service is as it was and a retry (or the caller's rollback) starts clean.
        why = describe_failure()
        for container in _containers_of(engine, stack.name, service):
            if container["Id"] not in old_ids:
                docker.remove_container(engine, container["Id"])
        raise OperationError(f"rolling {service} failed; its {len(old)} old container(s) "
                             f"still serve and the new ones were removed:\n{error.message}"
                             f"\n{why}", command=error.command, return_code=error.return_code,
                             stderr=error.stderr) from None
    # One at a time: each container that exits makes Traefik rebuild the
    # service, and a rebuilt load balancer counts every listed server up until
    # its first probe; draining together, a second old server closing its
    # socket just then would still get requests.  In turn, every other old
    # server is still serving normally when that happens.
    for replica in old:
        docker.signal_container(engine, replica.container, "SIGTERM")
        gateway.wait({replica.url}, up=False, progress=progress)
        docker.wait_removed(engine, replica.container, timeout_s=_grace_s(engine, replica))
    progress(f"rolled {service}: {len(new)} new container(s) serve, {len(old)} old removed")


# --- the service's containers --------------------------------------------------------


def _running_by_service(engine: Engine, project: str) -> dict[str, list[dict[str, Any]]]:
    by_service: dict[str, list[dict[str, Any]]] = {}
    for container in docker.project_containers(engine, project):
        if container["State"] == "running":
            by_service.setdefault(container["Labels"].get(_SERVICE_LABEL, ""), []).append(
                container)
    return by_service


def _containers_of(engine: Engine, project: str, service: str) -> list[dict[str, Any]]:
    return [c for c in docker.project_containers(engine, project)
            if c["Labels"].get(_SERVICE_LABEL) == service]


def _replicas(engine: Engine, stack: Stack, service: str, model: Model) -> list[Replica]:
    network = naming.network_name(stack, naming.MODELS_NET, "compose")
    replicas = []
    for container in _running_by_service(engine, stack.name).get(service, []):
        networks = container.get("NetworkSettings", {}).get("Networks", {})
        address = (networks.get(network) or {}).get("IPAddress")
        if not address:
            raise OperationError(f"container {container['Id'][:12]} of {service} has no "
                                 f"address on network {network}")
        replicas.append(Replica(container["Id"], f"http://{address}:{serving_port(model)}"))
    return replicas


def _grace_s(engine: Engine, replica: Replica) -> float:
    """The container's stop grace period (Docker's default when it sets none), plus a margin."""
    details = docker.inspect_container(engine, replica.container)
    return float(details.get("Config", {}).get("StopTimeout") or 10) + 5.0


# --- the gateway's view ----------------------------------------------------------------


@dataclass(frozen=True)
class _Gateway:
    """Which of a model's servers Traefik routes to, read from its metrics endpoint."""

    engine: Engine
    stack: Stack
    model: Model

    def wait(self, urls: set[str], *, up: bool, progress: Progress) -> None:
        """Until Traefik reports every one of ``urls`` up (``up``) or down/gone (not ``up``).

        Taking servers out is bounded by DEREGISTER_S: past it they stop answering
        anyway, and the gateway's retry covers the rest; so a slow removal is said,
        not raised.  A new server that never gets routed fails the rollout.
        """
        service = f"{naming.router_name(self.stack, self.model)}@docker"
        limit = _ROUTED_TIMEOUT_S if up else float(DEREGISTER_S)
        deadline = time.monotonic() + limit
        seen: dict[str, bool] = {}
        while time.monotonic() < deadline:
            seen = servers_up(self._metrics(), service)
            if all(seen.get(url, False) == up for url in urls):
                return
            time.sleep(_POLL_S)
        state = ", ".join(f"{url}: {'up' if seen.get(url) else 'down or absent'}"
                          for url in sorted(urls))
        if up:
            raise OperationError(f"the gateway did not route {service} to its new "
                                 f"containers within {limit:.0f} s ({state})")
        progress(f"the gateway still lists old servers of {service} after {limit:.0f} s "
                 f"({state}); they stop now, and the route's retry covers them")

    def _metrics(self) -> str:
        url = f"http://{self._address()}:{naming.GATEWAY_ADMIN_PORT}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return str(response.read().decode("utf-8", "replace"))
        except (urllib.error.URLError, OSError) as error:
            raise OperationError(f"reading the gateway's metrics at {url} failed: {error}; "
                                 "is the gateway running (swarmai status)?") from None

    def _address(self) -> str:
        running = _running_by_service(self.engine, self.stack.name).get(naming.GATEWAY, [])
        network = naming.network_name(self.stack, naming.MODELS_NET, "compose")
        for container in running:
            networks = container.get("NetworkSettings", {}).get("Networks", {})
            if address := (networks.get(network) or {}).get("IPAddress"):
                return str(address)
        raise OperationError(f"the gateway of {self.stack.name} is not running on "
                             f"{network}: start the stack with `swarmai up`")
