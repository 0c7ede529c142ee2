"""What one value of a stack file can be: the patterns and typed fields of the spec.

Each field checks itself (a format, a range, a normal form); :mod:`.models`
puts them together, and rules between fields live in :mod:`.checks`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal, NoReturn, TypeVar

from pydantic import AfterValidator, BeforeValidator

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
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
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


def matches(pattern: re.Pattern[str], what: str, example: str) -> AfterValidator:
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


def non_empty(items: tuple[_T, ...]) -> tuple[_T, ...]:
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


def _tls_name(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if not HOSTNAME.fullmatch(value.removeprefix("*.")) or ".." in value:
        raise ValueError(f"{value!r} is neither a DNS name nor an IP address "
                         "(for example 'models.example.com' or '10.0.0.5')")
    return value


DnsLabel = Annotated[str, matches(DNS_LABEL, "a lowercase DNS label of at most 40 characters",
                                   "'vision' or 'fraud-v2'")]
NodeName = Annotated[str, matches(HOSTNAME, "a node hostname", "'gpu-a'")]
SecretName = Annotated[str, matches(SECRET_NAME, "a Docker secret name", "'s3-creds'")]
GpuId = Annotated[str, BeforeValidator(_id_as_text),
                  matches(GPU_ID, "a GPU index or UUID", "'0' or 'GPU-3f2c...'")]
ModelUri = Annotated[str, AfterValidator(_model_uri)]
Route = Annotated[str, matches(ROUTE, "a URL path of one or more segments", "'/churn'")]
DockerSize = Annotated[str, BeforeValidator(_id_as_text),
                       matches(DOCKER_SIZE, "a Docker size", "'512M' or '2G'")]
Cpus = Annotated[str, BeforeValidator(_positive_cpus)]
EnvName = Annotated[str, matches(ENV_NAME, "a variable name (letters, digits, '_')",
                                  "'LOG_LEVEL'")]
EnvValue = Annotated[str, BeforeValidator(_env_text)]
ContainerPath = Annotated[str, matches(CONTAINER_PATH, "an absolute path in the container",
                                        "'/opt/lexicon'")]
VolumeSource = Annotated[str, AfterValidator(_volume_source)]
ImageRef = Annotated[str, matches(IMAGE_REF, "an image reference",
                                   "'registry.local/traefik:v3.7.15'")]
UrlPath = Annotated[str, matches(URL_PATH, "a URL path", "'/healthz' or '/health/ready'")]
IpRange = Annotated[str, AfterValidator(_ip_range)]
TlsName = Annotated[str, AfterValidator(_tls_name)]
Email = Annotated[str, matches(EMAIL, "an e-mail address", "'ops@example.com'")]
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
