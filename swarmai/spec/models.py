"""The stack spec: immutable typed models of one ``stack.yaml``.

These classes check what each field can check on its own (types, ranges,
formats).  Rules that relate fields to each other live in :mod:`.checks`, and
:func:`swarmai.spec.load_stack` is the only way to build a :class:`Stack` from a
file, so a ``Stack`` in hand has always passed both.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Annotated, Literal, NoReturn, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from swarmai import modeluri

_T = TypeVar("_T")
_K = TypeVar("_K")
_V = TypeVar("_V")

Runtime = Literal["tfserving", "torchserve", "fastapi", "app"]
# The runtimes that load the model from MLflow in the server itself, so deploy pins
# their servers to the version an alias resolves to (see render.bundle.Serving).
PINNED_RUNTIMES: tuple[Runtime, ...] = ("fastapi", "app")
Target = Literal["compose", "swarm"]
IpvsMode = Literal["auto", True, False]

DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
SECRET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
GPU_ID = re.compile(r"^(?:[0-9]+|GPU-[0-9A-Fa-f-]{8,}|MIG-[0-9A-Fa-f-]{8,})$")
DOCKER_SIZE = re.compile(r"^[0-9]+(?:\.[0-9]+)?(?:[bB]|[kKmMgG][bB]?)?$")
CPUS = re.compile(r"^-?[0-9]+(?:\.[0-9]+)?$")
ROUTE = re.compile(r"^(?:/(?!\.\.?(?:/|$))[A-Za-z0-9._~-]+)+$")
# A path an app answers on: `/` alone, or segments as in ROUTE, a trailing `/` allowed.
_SEGMENT = r"(?!\.\.?(?:/|$))[A-Za-z0-9._~-]+"
URL_PATH = re.compile(rf"^/(?:{_SEGMENT}(?:/{_SEGMENT})*/?)?$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
IMAGE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$")
# Upper case is the convention, but lower-case names such as http_proxy are real.
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Absolute, normalised (no empty, `.` or `..` segments, no trailing `/`).
CONTAINER_PATH = re.compile(r"^(?:/(?!\.\.?(?:/|$))[A-Za-z0-9._@+-]+)+$")
VOLUME_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# HOST[:PORT][/PATH]: a registry address, no tag or digest.
IMAGE_REGISTRY = re.compile(
    r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?(/[a-z0-9._-]+)*$")
# The key of ``images:`` that names a registry rather than an image.
IMAGE_REGISTRY_KEY = "registry"


def _matches(pattern: re.Pattern[str], what: str, example: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{value!r} is not {what} (for example {example})")
        return value

    return AfterValidator(check)


def _model_uri(value: str) -> str:
    uri = modeluri.match(value)
    if uri is None:
        raise ValueError(f"{value!r} is not a registry model URI (write {modeluri.GRAMMAR})")
    if uri.alias is not None and modeluri.is_reserved_alias(uri.alias):
        raise ValueError(f"alias {uri.alias!r} is reserved by MLflow (use another alias name)")
    return value


def _id_as_text(value: object) -> object:
    # YAML reads `devices: [0]` as an int; device ids are names, keep them text.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _non_empty(items: tuple[_T, ...]) -> tuple[_T, ...]:
    # An after-validator, not min_length: pydantic also reports min_length when
    # the items themselves failed, which would add a false "empty" error.
    if not items:
        raise ValueError("must list at least one entry")
    return items


def _positive_cpus(value: object) -> str:
    # Docker parses cpus strictly: plain decimal digits, nothing else.
    text = str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not CPUS.fullmatch(text):
        raise ValueError(f"{value!r} is not a number of CPUs (for example \"1.5\")")
    if not float(text) > 0:
        raise ValueError(f"cpus must be a positive number, got {value!r}")
    return text


def _env_text(value: object) -> object:
    # YAML reads `DEBUG: true` as a bool and `THREADS: 4` as an int; the
    # environment is text, spelled as the stack file wrote it.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        raise ValueError('has no value (write "" for an empty one)')
    return value


def _volume_source(value: str) -> str:
    if value.startswith("/"):
        if not CONTAINER_PATH.fullmatch(value):
            raise ValueError(f"{value!r} is not a normalised absolute host path "
                             "(for example '/srv/lexicon')")
    elif not VOLUME_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is neither a volume name nor an absolute host path "
                         "(for example 'lexicon' or '/srv/lexicon')")
    return value


def _ip_range(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError:
        pass
    # 10.0.0.1/8 (host bits set) is a typo for a range or for one address;
    # refusing it beats silently allowing a whole /8.
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address or CIDR range "
                         "(for example '10.0.0.0/8' or '192.0.2.7')") from None
    address = value.split("/")[0]
    raise ValueError(f"{value!r} has bits set past its /{network.prefixlen} prefix: write "
                     f"'{network}' for the range, or '{address}' for the one address")


DnsLabel = Annotated[str, _matches(DNS_LABEL, "a lowercase DNS label of at most 40 characters",
                                   "'vision' or 'fraud-v2'")]
NodeName = Annotated[str, _matches(HOSTNAME, "a node hostname", "'gpu-a'")]
SecretName = Annotated[str, _matches(SECRET_NAME, "a Docker secret name", "'s3-creds'")]
GpuId = Annotated[str, BeforeValidator(_id_as_text),
                  _matches(GPU_ID, "a GPU index or UUID", "'0' or 'GPU-3f2c...'")]
ModelUri = Annotated[str, AfterValidator(_model_uri)]
Route = Annotated[str, _matches(ROUTE, "a URL path of one or more segments", "'/churn'")]
DockerSize = Annotated[str, BeforeValidator(_id_as_text),
                       _matches(DOCKER_SIZE, "a Docker size", "'512M' or '2G'")]
Cpus = Annotated[str, BeforeValidator(_positive_cpus)]
EnvName = Annotated[str, _matches(ENV_NAME, "a variable name (letters, digits, '_')",
                                  "'LOG_LEVEL'")]
EnvValue = Annotated[str, BeforeValidator(_env_text)]
ContainerPath = Annotated[str, _matches(CONTAINER_PATH, "an absolute path in the container",
                                        "'/opt/lexicon'")]
VolumeSource = Annotated[str, AfterValidator(_volume_source)]
ImageRef = Annotated[str, _matches(IMAGE_REF, "an image reference",
                                   "'registry.local/traefik:v3.7.15'")]
UrlPath = Annotated[str, _matches(URL_PATH, "a URL path", "'/healthz' or '/health/ready'")]
IpRange = Annotated[str, AfterValidator(_ip_range)]
# A command-line argument: `--port, 9000` in YAML is text too, spelled as written.
Argument = Annotated[str, BeforeValidator(_env_text)]


_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def size_bytes(size: str) -> int:
    """A Docker size (``512M``, ``1.5g``, ``100kb``) in bytes, as Docker reads it (binary units)."""
    match = re.fullmatch(r"([0-9.]+)([bBkKmMgG]?)[bB]?", size)
    if match is None or not DOCKER_SIZE.fullmatch(size):
        raise ValueError(f"{size!r} is not a Docker size")
    number, unit = match.groups()
    return int(float(number) * _SIZE_UNITS[unit.lower()])


class FrozenDict(dict[_K, _V]):
    """A dict that refuses changes after construction, and so can be hashed.

    Keeps ``Stack`` immutable all the way down while still serialising as a dict.
    """

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("a loaded stack is immutable; load the file again instead")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))


class _Spec(BaseModel):
    """Base of every spec model: immutable, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class GatewayAuth(_Spec):
    basic_users_secret: SecretName


class Gateway(_Spec):
    port: int = Field(default=80, ge=1, le=65535)
    dashboard: bool = False
    dashboard_port: int = Field(default=8080, ge=1, le=65535)
    auth: GatewayAuth | None = None


class Network(_Spec):
    ipvs: IpvsMode = "auto"


class Storage(_Spec):
    backend: Literal["seaweedfs", "minio", "external"] = "seaweedfs"
    bucket: Annotated[str, _matches(BUCKET, "an S3 bucket name (3-63 lowercase letters, "
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
    devices: Annotated[tuple[GpuId, ...], AfterValidator(_non_empty)]
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
    allow_ips: Annotated[tuple[IpRange, ...], AfterValidator(_non_empty)] | None = None


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
    command: Annotated[tuple[Argument, ...], AfterValidator(_non_empty)] | None = None

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
    models: Annotated[tuple[Model, ...], AfterValidator(_non_empty)]
    images: Annotated[Mapping[str, ImageRef], AfterValidator(FrozenDict)] = Field(
        default_factory=FrozenDict)

    @property
    def image_registry(self) -> str | None:
        """``images.registry``: where deploy pushes the images and every node pulls them."""
        return self.images.get(IMAGE_REGISTRY_KEY)
