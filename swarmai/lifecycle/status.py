"""``swarmai status``: what is running for a stack, and what each model serves.

Replica counts and health come from the engine (a backend's ``rows``, Swarm or
Compose); the served model version comes from the model server itself, asked
through the gateway like a client would: swarmai's FastAPI server names it at
``/v1/models``, TF Serving lists the AVAILABLE versions at ``/v1/models/<name>``,
swarmai's TorchServe handler answers ``GET /predictions/<name>`` with the
MLflow version archived by model-sync, and an app may send ``X-Model-Version``
on its ready path.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from swarmai.lifecycle.routes import open_route, probe_path, public_url
from swarmai.render.naming import model_service
from swarmai.spec import Model, Stack


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
    waiting_for: str = ""  # Swarm: the down node this service is pinned to

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Rows(Protocol):
    """Where the rows come from: a :class:`~swarmai.lifecycle.backend.Backend`."""

    def rows(self, stack: Stack) -> list[ServiceStatus]: ...


def stack_status(backend: Rows, stack: Stack,
                 gateway_host: str = "127.0.0.1") -> list[ServiceStatus]:
    """Each service of ``stack`` as ``backend`` runs it, model servers with their version."""
    models = {model_service(m): m for m in stack.models}
    result = []
    for row in backend.rows(stack):
        model = models.get(row.service)
        if model is not None:
            row = ServiceStatus(**{**row.as_dict(), "model": model.name,
                                   "version": served_version(stack, model, gateway_host),
                                   "url": public_url(stack, model, gateway_host)})
        result.append(row)
    return result


def gpu_ids(env: list[str]) -> str:
    """The GPU ids a Swarm task may use, from its NVIDIA_VISIBLE_DEVICES ("" when none)."""
    for item in env:
        key, _, value = item.partition("=")
        if key == "NVIDIA_VISIBLE_DEVICES":
            return "" if value == "void" else value
    return ""


def served_version(stack: Stack, model: Model, host: str) -> str:
    """Ask the model's server, through the gateway, which registry version it serves."""
    base = public_url(stack, model, host)
    try:
        if model.runtime == "app":
            return app_version(stack, model, host)
        if model.runtime == "fastapi":
            with open_route(stack, f"{base}/v1/models", timeout=3) as response:
                return str(json.load(response).get("version", "?"))
        if model.runtime == "tfserving":
            with open_route(stack, f"{base}/v1/models/{model.name}", timeout=3) as response:
                states = json.load(response).get("model_version_status", [])
                available = [s["version"] for s in states if s.get("state") == "AVAILABLE"]
                return ",".join(available) or "?"
        with open_route(stack, f"{base}/predictions/{model.name}", timeout=5) as response:
            header = response.headers.get("X-Model-Version")
            return str(header or json.load(response).get("version") or "?")
    except (urllib.error.URLError, OSError, ValueError, KeyError, AttributeError):
        return "?"


def app_version(stack: Stack, model: Model, host: str) -> str:
    """The ``X-Model-Version`` an app sends on its ready path; "" when it sends none (its
    image is then what tells its versions apart: the status table shows it)."""
    url = public_url(stack, model, host) + probe_path(model)
    with open_route(stack, url, timeout=3) as response:
        return str(response.headers.get("X-Model-Version") or "")


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
