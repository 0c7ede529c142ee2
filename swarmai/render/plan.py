"""Target-neutral plans of the services and files a stack needs.

The component renderers (gateway, registry, runtimes) describe *what* runs as
:class:`ServicePlan` s; :mod:`.compose` and :mod:`.swarm` decide *how* each
target spells it.  Keeping the two apart means a fact such as "the model server
is healthy when its model is loaded" is written once, for both targets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from swarmai.spec import Gpus, Model, Resources


@dataclass(frozen=True)
class Healthcheck:
    """A container healthcheck; ``start_interval`` makes the first probe fast."""

    test: tuple[str, ...]
    start_period_s: int
    interval_s: int = 10
    timeout_s: int = 5
    retries: int = 3
    start_interval_s: int = 1

    @property
    def window_s(self) -> int:
        """Longest time from start until the check has surely failed."""
        return self.start_period_s + self.interval_s * self.retries + self.timeout_s


@dataclass(frozen=True)
class Mount:
    """A named volume (``source`` a volume key) or a rendered file (a config)."""

    source: str
    target: str
    read_only: bool = False
    # Do not seed an empty volume from the image's directory: the official
    # runtime images own their mount points as root, and that ownership would
    # reach the store volume model-sync must write.
    nocopy: bool = False


@dataclass(frozen=True)
class RenderedFile:
    """A file of the bundle mounted into a service (a Swarm/Compose config)."""

    key: str  # stable config key, e.g. "traefik-static"
    path: str  # path in the bundle, relative to the output directory
    target: str  # path inside the container (scripts are run with /bin/sh: no mode needed)


@dataclass(frozen=True)
class Port:
    published: int
    target: int


@dataclass(frozen=True)
class ServicePlan:
    name: str
    image: str
    role: Literal["gateway", "storage", "database", "registry", "model", "sync"]
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    networks: tuple[str, ...] = ()
    volumes: tuple[Mount, ...] = ()
    files: tuple[RenderedFile, ...] = ()
    secrets: tuple[str, ...] = ()
    healthcheck: Healthcheck | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[Port, ...] = ()
    replicas: int = 1
    global_mode: bool = False
    gpus: Gpus | None = None
    resources: Resources | None = None
    # Docker size of /dev/shm (PyTorch data loaders, NCCL); None: Docker's 64 MB.
    shm_size: str | None = None
    manager_only: bool = False
    # Swarm: pin to this node hostname (GPU models and their sync steps).
    placement_node: str | None = None
    # The model whose route the gateway forwards to ``route_port`` of this service.
    routed_model: Model | None = None
    route_port: int | None = None
    # A path on ``route_port`` that answers 2xx only while the server takes
    # requests (the FastAPI server's turns 503 on SIGTERM): the gateway's active
    # health check on Compose, where it is how a stopping container leaves routing.
    ready_path: str | None = None
    # A service whose readiness others need (compose depends_on service_healthy).
    depends_on: tuple[str, ...] = ()
    stop_grace_s: int = 10
    # Start the new task before stopping the old one (zero-downtime roll);
    # impossible when the task holds an exclusive GPU or a host-mode port.
    start_first: bool = True
    # The user the process runs as, ``UID:GID``; None: the image's (a service
    # that stays root says why in its naming.ROOT_LABEL).
    user: str | None = None
    # No capabilities and no privilege gain (setuid): for services that need neither.
    least_privilege: bool = False
    # A read-only root file system (``tmpfs`` and volumes aside).
    read_only_root: bool = False
    # Writable in-memory folders, for a read-only root file system.
    tmpfs: tuple[str, ...] = ()
