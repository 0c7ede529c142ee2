"""The stack spec: immutable typed models of one ``stack.yaml``.

These classes check what each field can check on its own (types, ranges,
formats).  Rules that relate fields to each other live in :mod:`.checks`, and
:func:`swarmai.spec.load_stack` is the only way to build a :class:`Stack` from a
file, so a ``Stack`` in hand has always passed both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Literal, NoReturn, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from swarmai import modeluri

_T = TypeVar("_T")
_K = TypeVar("_K")
_V = TypeVar("_V")

Runtime = Literal["tfserving", "torchserve", "fastapi"]
Target = Literal["compose", "swarm"]
IpvsMode = Literal["auto", True, False]

DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
SECRET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
GPU_ID = re.compile(r"^(?:[0-9]+|GPU-[0-9A-Fa-f-]{8,}|MIG-[0-9A-Fa-f-]{8,})$")
DOCKER_SIZE = re.compile(r"^[0-9]+(?:\.[0-9]+)?(?:[bB]|[kKmMgG][bB]?)?$")
CPUS = re.compile(r"^-?[0-9]+(?:\.[0-9]+)?$")
ROUTE = re.compile(r"^(?:/(?!\.\.?(?:/|$))[A-Za-z0-9._~-]+)+$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
IMAGE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$")
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
ImageRef = Annotated[str, _matches(IMAGE_REF, "an image reference",
                                   "'registry.local/traefik:v3.7.15'")]


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


class Resources(_Spec):
    cpus: Cpus | None = None
    memory: DockerSize | None = None


class Model(_Spec):
    name: DnsLabel
    runtime: Runtime
    model: ModelUri
    replicas: int = Field(default=1, ge=1, le=1000)
    route: Route | None = None
    gpus: Gpus | None = None
    batching: Batching | None = None
    resources: Resources | None = None

    @property
    def public_route(self) -> str:
        """The path prefix Traefik routes to this model."""
        return self.route or f"/models/{self.name}"

    @property
    def registered_name(self) -> str:
        """The registered-model name in MLflow, taken from the model URI."""
        return modeluri.parse(self.model).name  # valid: checked by the field validator


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
