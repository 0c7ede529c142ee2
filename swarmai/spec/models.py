"""The stack spec: immutable typed models of one ``stack.yaml``.

These classes check what each field can check on its own (types, ranges,
formats).  Rules that relate fields to each other live in :mod:`.checks`, and
:func:`swarmai.spec.load_stack` is the only way to build a :class:`Stack` from a
file, so a ``Stack`` in hand has always passed both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from swarmai import modeluri
from swarmai.spec.fields import (
    BUCKET,
    IMAGE_REGISTRY_KEY,
    PINNED_RUNTIMES,
    Argument,
    ContainerPath,
    Cpus,
    DnsLabel,
    DockerSize,
    Email,
    EnvName,
    EnvValue,
    FrozenDict,
    GpuId,
    ImageRef,
    IpRange,
    IpvsMode,
    ModelUri,
    NodeName,
    Route,
    Runtime,
    SecretName,
    TlsName,
    UrlPath,
    VolumeSource,
    matches,
    non_empty,
)


class _Spec(BaseModel):
    """Base of every spec model: immutable, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class GatewayAuth(_Spec):
    basic_users_secret: SecretName


TlsMode = Literal["local", "secret", "acme", "off"]


class GatewayTls(_Spec):
    """HTTPS at the gateway; see docs/security.md for each mode."""

    # local: swarmai's own CA issues the certificate (swarmai.tlsca); secret: a
    # certificate and key you put in the secret; acme: Let's Encrypt (or
    # acme_ca_server) for `names`; off: plain HTTP, and no logins.
    mode: TlsMode = "local"
    secret: SecretName = "gateway-tls"
    # Names the certificate holds besides loopback and this machine's names
    # (local), or the domains ACME certifies (acme).
    names: tuple[TlsName, ...] = ()
    acme_email: Email | None = None
    acme_ca_server: Annotated[str, Field(pattern=r"^https://\S+$")] | None = None


class Gateway(_Spec):
    port: int = Field(default=80, ge=1, le=65535)
    # With TLS on, `port` only redirects here.
    https_port: int = Field(default=443, ge=1, le=65535)
    tls: GatewayTls = GatewayTls()
    dashboard: bool = False
    dashboard_port: int = Field(default=8080, ge=1, le=65535)
    auth: GatewayAuth | None = None


class Network(_Spec):
    ipvs: IpvsMode = "auto"


class Storage(_Spec):
    backend: Literal["seaweedfs", "minio", "external"] = "seaweedfs"
    bucket: Annotated[str, matches(BUCKET, "an S3 bucket name (3-63 lowercase letters, "
                                    "digits, '.' or '-')", "'mlflow'")] = "mlflow"
    credentials_secret: SecretName = "s3-creds"
    endpoint: Annotated[str, Field(pattern=r"^https?://[^\s/]+(?::[0-9]+)?/?$")] | None = None
    publish_port: int | None = Field(default=None, ge=1, le=65535)


class Registry(_Spec):
    backend_store: Literal["sqlite", "postgres"] = "sqlite"
    db_password_secret: SecretName = "mlflow-db-password"
    # Swarm: the node that keeps the registry's data (MLflow, its database, the
    # S3 store).  None: the node labelled for this stack, which deploy labels
    # the first time (the manager it runs on).
    node: NodeName | None = None


class Node(_Spec):
    gpus: tuple[GpuId, ...] = ()


class Gpus(_Spec):
    node: NodeName | None = None
    devices: Annotated[tuple[GpuId, ...], AfterValidator(non_empty)]
    share: bool = False


class Batching(_Spec):
    max_batch_size: int = Field(ge=1, le=4096)
    max_delay_ms: int = Field(ge=0, le=60_000)


class Reservations(_Spec):
    """What the scheduler sets aside for each task (Swarm places by it)."""

    cpus: Cpus | None = None
    memory: DockerSize | None = None


class Resources(_Spec):
    # Limits; a reservation above its limit is refused by the checks.
    cpus: Cpus | None = None
    memory: DockerSize | None = None
    reservations: Reservations | None = None


class Volume(_Spec):
    """An extra mount into the model server; read-only unless asked."""

    source: VolumeSource
    target: ContainerPath
    read_only: bool = True


class Server(_Spec):
    """Limits of the model server process.

    Only keys set in the stack file are rendered; otherwise each runtime keeps
    its own default (swarmai's FastAPI server: 1 worker, 16 MB bodies, 64
    queued requests, 30 s).  Which runtime honours which key: see checks.
    """

    workers: int | None = Field(default=None, ge=1, le=64)
    # At most 1 GiB: TorchServe holds sizes in a Java int.
    max_body_mb: int | None = Field(default=None, ge=1, le=1024)
    max_queue: int | None = Field(default=None, ge=1, le=100_000)
    timeout_s: int | None = Field(default=None, ge=1, le=3600)
    # The fraction of requests swarmai's FastAPI server logs (0: none, 1: all).
    access_log: float | None = Field(default=None, ge=0, le=1)
    # Serve /docs, /redoc and /openapi.json on the stack's network (never
    # through the gateway): off, since no client needs them.
    docs: bool | None = None


class RateLimit(_Spec):
    """Requests per second from one client address; up to ``burst`` at once (default: average)."""

    average: int = Field(ge=1, le=1_000_000)
    burst: int | None = Field(default=None, ge=1, le=1_000_000)


class RouteRules(_Spec):
    """What the gateway enforces on a model's route before a request reaches a server:
    past the rate 429, a larger body 413, an address outside ``allow_ips`` 403."""

    rate_limit: RateLimit | None = None
    max_body_mb: int | None = Field(default=None, ge=1, le=1024)
    allow_ips: Annotated[tuple[IpRange, ...], AfterValidator(non_empty)] | None = None
    # The route's own login, in place of gateway.auth; the models that name one
    # secret are one client group (one login file, one set of users).
    auth: GatewayAuth | None = None


class App(_Spec):
    """Your own server image as a model's runtime (``runtime: app``).

    swarmai gives it what it gives its own runtimes (route, GPUs, health-gated
    start-first rolls); the image is the user's, so it is never built or pushed.
    """

    image: ImageRef
    port: int = Field(default=8000, ge=1, le=65535)
    # Docker's healthcheck (a task is started, and a roll goes on, once it answers 2xx).
    health_path: UrlPath = "/healthz"
    # The gateway's active health check; None: health_path.
    ready_path: UrlPath | None = None
    # Replaces the image's CMD (its ENTRYPOINT stays).
    command: Annotated[tuple[Argument, ...], AfterValidator(non_empty)] | None = None

    @property
    def readiness_path(self) -> str:
        return self.ready_path or self.health_path


class Model(_Spec):
    name: DnsLabel
    runtime: Runtime
    # Required except with runtime app (checks.py): an app may load no registry model.
    model: ModelUri | None = None
    replicas: int = Field(default=1, ge=1, le=1000)
    route: Route | None = None
    gpus: Gpus | None = None
    batching: Batching | None = None
    resources: Resources | None = None
    environment: Annotated[Mapping[EnvName, EnvValue], AfterValidator(FrozenDict)] = Field(
        default_factory=FrozenDict)
    volumes: tuple[Volume, ...] = ()
    shm_size: DockerSize | None = None
    server: Server | None = None
    gateway: RouteRules | None = None
    # Whether a prediction may be sent twice: the gateway then retries one whose
    # replica died before answering (a 502) on another replica.
    idempotent: bool = True
    # Seconds a server has to become healthy before its failed checks count (Docker's
    # healthcheck start_period).  Loading may first download the artifacts, hence
    # the generous default; a small model fails a deploy or a roll sooner with less.
    start_period_s: int = Field(default=180, ge=5, le=3600)
    # runtime app only (checks.py): the image, port and paths of the user's server.
    app: App | None = None

    @property
    def public_route(self) -> str:
        """The path prefix Traefik routes to this model."""
        return self.route or f"/models/{self.name}"

    @property
    def uri(self) -> str:
        """The registry model URI, for code that serves one (every runtime but an app
        without ``model:``, which the checks allow only there)."""
        if self.model is None:
            raise ValueError(f"model {self.name} names no registry model (model:)")
        return self.model

    @property
    def registered_name(self) -> str | None:
        """The registered-model name in MLflow, taken from the model URI (None: no model)."""
        # Valid: checked by the field validator.
        return None if self.model is None else modeluri.parse(self.model).name

    @property
    def pinned_by_deploy(self) -> bool:
        """Whether deploy pins the server to the version its alias resolves to: a server
        that loads an aliased model from MLflow itself (fastapi, an app with ``model:``)."""
        return (self.runtime in PINNED_RUNTIMES and self.model is not None
                and modeluri.parse(self.model).alias is not None)


class Stack(_Spec):
    version: Literal[1]
    name: DnsLabel
    gateway: Gateway = Gateway()
    network: Network = Network()
    storage: Storage = Storage()
    registry: Registry = Registry()
    nodes: Annotated[Mapping[NodeName, Node], AfterValidator(FrozenDict)] = Field(
        default_factory=FrozenDict)
    models: Annotated[tuple[Model, ...], AfterValidator(non_empty)]
    images: Annotated[Mapping[str, ImageRef], AfterValidator(FrozenDict)] = Field(
        default_factory=FrozenDict)

    @property
    def image_registry(self) -> str | None:
        """``images.registry``: where deploy pushes the images and every node pulls them."""
        return self.images.get(IMAGE_REGISTRY_KEY)

    def login_for(self, model: Model) -> GatewayAuth | None:
        """The login ``model``'s route asks for: its own (``gateway.auth``), else the stack's."""
        own = model.gateway.auth if model.gateway is not None else None
        return own or self.gateway.auth

    def login_secrets(self) -> dict[str, str]:
        """Each login secret (htpasswd) -> where the stack file first names it."""
        paths: dict[str, str] = {}
        if self.gateway.auth is not None:
            paths[self.gateway.auth.basic_users_secret] = "gateway.auth.basic_users_secret"
        for index, model in enumerate(self.models):
            if model.gateway is not None and model.gateway.auth is not None:
                paths.setdefault(model.gateway.auth.basic_users_secret,
                                 f"models[{index}].gateway.auth.basic_users_secret")
        return paths
