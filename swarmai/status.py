"""``swarmai status``: what is running for a stack, and what each model serves.

Replica counts and health come from the engine; the served model version comes
from the model server itself, asked through the gateway like a client would:
swarmai's FastAPI server names it at ``/v1/models``, TF Serving lists the
AVAILABLE versions at ``/v1/models/<name>``, and swarmai's TorchServe handler
answers ``GET /predictions/<name>`` with the MLflow version archived by model-sync.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any

from swarmai import engine as docker
from swarmai.engine import Engine
from swarmai.gateway_check import public_url
from swarmai.render.naming import model_service
from swarmai.spec import Model, Stack, Target


@dataclass(frozen=True)
class ServiceStatus:
    service: str
    desired: int
    running: int
    healthy: bool
    nodes: tuple[str, ...]
    gpus: str  # the reserved device ids, "" when none
    image: str
    model: str = ""  # the stack's model name, for model servers
    version: str = ""  # registry version served now ("?" when it cannot be asked)
    url: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def stack_status(engine: Engine, stack: Stack, target: Target,
                 gateway_host: str = "127.0.0.1") -> list[ServiceStatus]:
    rows = _swarm_rows(engine, stack) if target == "swarm" else _compose_rows(engine, stack)
    models = {model_service(m): m for m in stack.models}
    result = []
    for row in rows:
        model = models.get(row.service)
        if model is not None:
            row = ServiceStatus(**{**row.as_dict(), "model": model.name,
                                   "version": served_version(stack, model, gateway_host),
                                   "url": public_url(stack, model, gateway_host)})
        result.append(row)
    return result


def _swarm_rows(engine: Engine, stack: Stack) -> list[ServiceStatus]:
    services = docker.stack_services(engine, stack.name)
    tasks = docker.service_tasks(engine, [s["ID"] for s in services])
    hostnames = {n["ID"]: n["Description"]["Hostname"] for n in docker.nodes(engine)}
    rows = []
    for service in sorted(services, key=lambda s: s["Spec"]["Name"]):
        spec = service["Spec"]
        own = [t for t in tasks if t["ServiceID"] == service["ID"]
               and t.get("DesiredState") == "running"]
        running = [t for t in own if t["Status"]["State"] == "running"]
        replicated = spec.get("Mode", {}).get("Replicated")
        desired = int(replicated.get("Replicas", 1)) if replicated else len(own)
        container = spec["TaskTemplate"]["ContainerSpec"]
        rows.append(ServiceStatus(
            service=spec["Name"].removeprefix(f"{stack.name}_"),
            desired=desired,
            running=len(running),
            healthy=len(running) >= desired,
            nodes=tuple(sorted({hostnames.get(t.get("NodeID", ""), "?") for t in running})),
            gpus=_gpu_ids(container.get("Env") or []),
            image=container["Image"].split("@")[0],
        ))
    return rows


def _compose_rows(engine: Engine, stack: Stack) -> list[ServiceStatus]:
    by_service: dict[str, list[dict[str, Any]]] = {}
    for container in docker.project_containers(engine, stack.name):
        name = container["Labels"].get("com.docker.compose.service", "?")
        by_service.setdefault(name, []).append(container)
    rows = []
    for name, containers in sorted(by_service.items()):
        running = [c for c in containers if c["State"] == "running"]
        healthy = [c for c in running if "(healthy)" in c["Status"] or "(" not in c["Status"]]
        details = docker.inspect_container(engine, containers[0]["Id"])
        rows.append(ServiceStatus(
            service=name, desired=len(containers), running=len(healthy),
            healthy=len(healthy) == len(containers), nodes=("localhost",),
            gpus=_compose_gpus(details), image=containers[0]["Image"],
        ))
    return rows


def _gpu_ids(env: list[str]) -> str:
    for item in env:
        key, _, value = item.partition("=")
        if key == "NVIDIA_VISIBLE_DEVICES":
            return "" if value == "void" else value
    return ""


def _compose_gpus(details: dict[str, Any]) -> str:
    requests = details.get("HostConfig", {}).get("DeviceRequests") or []
    return ",".join(d for r in requests for d in (r.get("DeviceIDs") or []))


def served_version(stack: Stack, model: Model, host: str) -> str:
    """Ask the model's server, through the gateway, which registry version it serves."""
    base = public_url(stack, model, host)
    try:
        if model.runtime == "fastapi":
            with urllib.request.urlopen(f"{base}/v1/models", timeout=3) as response:
                return str(json.load(response).get("version", "?"))
        if model.runtime == "tfserving":
            with urllib.request.urlopen(f"{base}/v1/models/{model.name}", timeout=3) as response:
                states = json.load(response).get("model_version_status", [])
                available = [s["version"] for s in states if s.get("state") == "AVAILABLE"]
                return ",".join(available) or "?"
        with urllib.request.urlopen(f"{base}/predictions/{model.name}", timeout=5) as response:
            header = response.headers.get("X-Model-Version")
            return str(header or json.load(response).get("version") or "?")
    except (urllib.error.URLError, OSError, ValueError, KeyError, AttributeError):
        return "?"


def format_table(rows: list[ServiceStatus]) -> str:
    header = ("SERVICE", "REPLICAS", "HEALTH", "NODE", "GPUS", "VERSION", "URL", "IMAGE")
    lines = [header]
    for r in rows:
        lines.append((r.service, f"{r.running}/{r.desired}",
                      "healthy" if r.healthy else "UNHEALTHY", ",".join(r.nodes) or "-",
                      r.gpus or "-", r.version or "-", r.url or "-", r.image))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)
