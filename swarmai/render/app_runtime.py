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
from swarmai.render.common import http_probe
from swarmai.spec import App, Model


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
        healthcheck=http_probe(app.port, app.health_path),
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
            "MLFLOW_TRACKING_URI": naming.registry_read_url(),
            **naming.MLFLOW_CLIENT_ENV,
        })
    return environment
