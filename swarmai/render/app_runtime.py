"""Your own server image as a model's runtime (``runtime: app``).

What is the app's here: its image, command, port, the probe of its health path,
and the environment swarmai hands it (:func:`app_server`).  Everything else
(route, GPU pinning, drain, start-first rolls, labels) is what every model
server gets: :func:`swarmai.render.runtimes.model_services` hands this to
``runtimes._server``.  (This module does not import runtimes, which imports it.)

The app is never built, pushed or pinned by digest: ``app.image`` is the
user's reference, pulled by the engine as written (on a cluster, from a registry
every node can reach).  Changing it and deploying again is the promotion: the
service's image changes, so Swarm (and swarmai's Compose roll) replaces its
tasks start-first, each new one healthy before an old one stops.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from swarmai.render import naming
from swarmai.spec import App, Model

# How long the probe waits for an answer; Docker's own timeout (plan.Healthcheck,
# 5 s) is above it, so a slow app fails with the probe's message, not Docker's.
_PROBE_TIMEOUT_S = 4


@dataclass(frozen=True)
class AppServer:
    """What of a model server is the app's own (runtimes._server adds the rest)."""

    image: str
    healthcheck: tuple[str, ...]
    ready_path: str
    command: tuple[str, ...] | None = None
    environment: dict[str, str] = field(default_factory=dict)


def app_block(model: Model) -> App:
    """``model.app``, which the spec checks require with runtime app."""
    if model.app is None:
        raise ValueError(f"model {model.name}: runtime app without an app: block")
    return model.app


def app_server(model: Model) -> AppServer:
    """The app's image, command, health probe and environment."""
    app = app_block(model)
    return AppServer(
        image=app.image,
        command=app.command,
        healthcheck=health_probe(app.port, app.health_path),
        ready_path=app.readiness_path,
        environment=app_environment(model),
    )


def app_environment(model: Model) -> dict[str, str]:
    """``MODEL_NAME`` and ``PORT`` (the port the gateway routes to, for an app that reads
    it); with ``model:``, the pinned ``MODEL_URI`` and what an MLflow client needs to
    load it from the stack's registry (artifacts streamed through MLflow)."""
    environment = {"MODEL_NAME": model.name, "PORT": str(app_block(model).port)}
    if model.model is not None:
        environment.update({
            "MODEL_URI": model.model,
            "MLFLOW_TRACKING_URI": naming.mlflow_url(),
            **naming.MLFLOW_CLIENT_ENV,
        })
    return environment


def health_probe(port: int, path: str) -> tuple[str, ...]:
    """Docker's healthcheck: GET ``path`` inside the container, healthy on 2xx/3xx.

    An exec form with python3 (which a FastAPI image has; curl or wget it may
    not), no shell.  On failure it prints one line, the status and the start of
    the body, or why nothing answered: `docker inspect` and swarmai's failure
    report show it.
    """
    url = f"http://127.0.0.1:{port}{path}"
    code = (
        "import sys, urllib.error, urllib.request\n"
        f"try: urllib.request.urlopen({url!r}, timeout={_PROBE_TIMEOUT_S})\n"
        "except urllib.error.HTTPError as e: "
        f"sys.exit(f'HTTP {{e.code}} on {path}: ' + e.read().decode(errors='replace')[:400])\n"
        f"except OSError as e: sys.exit(f'no answer on {path}: {{e}}')"
    )
    return ("CMD", "python3", "-c", code)
