"""What `swarmai plan` compares: each service as one typed shape, from either side.

The desired side is the rendered main file (``stack.yml`` or ``compose.yml``,
parsed); the live side is what the engine says (``docker service inspect`` on
Swarm, container and image inspect on Compose).  Both become the same
:class:`ServiceShape`, so a diff is a comparison of two flat field lists
(:meth:`ServiceShape.fields`), the same field names on both targets.

Normalisation, so that only what the stack sets is compared:

- a FastAPI server pinned to a version (``MODEL_URI=models:/NAME/VERSION``)
  carries it as ``version`` (and ``model``); ``MODEL_URI`` and the
  ``swarmai.model-uri`` label are then left out, so a version bump shows once;
- the engine's own labels (``com.docker.stack.*``, ``com.docker.compose.*``)
  are dropped; on Compose, so are the environment and labels a container
  inherits from its image (:meth:`ServiceShape.without`);
- a mounted config is the SHA-256 prefix of its content, the one swarmai puts in
  Swarm config names, so Swarm and Compose show the same value.

Secrets appear by name only, elsewhere: nothing here reads a secret's value.
Pure: no engine, no files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from swarmai import modeluri
from swarmai.render.compose import FILES_LABEL
from swarmai.render.naming import content_hash
from swarmai.spec import Target

GLOBAL = "global"
ENGINE_LABEL_PREFIXES = ("com.docker.stack.", "com.docker.compose.")
_MODEL_URI_ENV = "MODEL_URI"
_MODEL_URI_LABEL = "swarmai.model-uri"
_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([bkmgtp])?i?b?$", re.IGNORECASE)
_UNITS = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


@dataclass(frozen=True)
class ServiceShape:
    """One service as a deploy would leave it, or as it runs now."""

    image: str
    version: str | None = None  # the model version a FastAPI server is pinned to
    model: str | None = None  # the registered model of that version
    environment: Mapping[str, str] = field(default_factory=dict)
    # Swarm: the service's labels (deploy.labels, where Traefik's routes live);
    # Compose: the container's labels.
    labels: Mapping[str, str] = field(default_factory=dict)
    container_labels: Mapping[str, str] = field(default_factory=dict)  # Swarm only
    cpus: int | None = None  # limit, in nano-CPUs
    memory: int | None = None  # limit, in bytes
    gpus: tuple[str, ...] = ()  # Swarm: generic-resource kinds; Compose: device ids
    replicas: int | str = 1  # or "global"
    placement: tuple[str, ...] = ()  # Swarm constraints and spread preferences
    endpoint_mode: str | None = None  # Swarm: vip or dnsrr
    ports: tuple[str, ...] = ()  # "PUBLISHED:TARGET/PROTOCOL", Swarm adds " (mode)"
    configs: Mapping[str, str] = field(default_factory=dict)  # target path -> content hash

    def fields(self) -> dict[str, str]:
        """Every compared field by name, as text; an unset field is absent."""
        found: dict[str, str] = {"image": self.image, "replicas": str(self.replicas)}
        optional = {
            "model": self.model, "version": self.version,
            "resources.limits.cpus": None if self.cpus is None else format_cpus(self.cpus),
            "resources.limits.memory": None if self.memory is None else format_bytes(
                self.memory),
            "resources.gpus": ",".join(self.gpus) or None,
            "placement": ", ".join(self.placement) or None,
            "endpoint_mode": self.endpoint_mode,
            "ports": ", ".join(self.ports) or None,
        }
        found.update({k: v for k, v in optional.items() if v is not None})
        for prefix, values in (("env", self.environment), ("labels", self.labels),
                               ("container_labels", self.container_labels),
                               ("configs", self.configs)):
            found.update({f"{prefix}.{key}": value for key, value in values.items()})
        return found

    def without(self, environment: Mapping[str, str], labels: Mapping[str, str]) -> ServiceShape:
        """This shape less the pairs equal to ``environment`` and ``labels`` (what a
        container inherits from its image)."""
        return replace(self, environment=_minus(self.environment, environment),
                       labels=_minus(self.labels, labels))


@dataclass(frozen=True)
class DesiredState:
    """What a deploy of the rendered bundle would leave (engine-level names)."""

    services: Mapping[str, ServiceShape]
    configs: Mapping[str, str]  # config key -> content hash
    secrets: frozenset[str]
    networks: frozenset[str]
    volumes: frozenset[str]


@dataclass(frozen=True)
class LiveState:
    """What runs now, read from the engine (and, for Compose files, the state directory)."""

    services: Mapping[str, ServiceShape] = field(default_factory=dict)
    configs: Mapping[str, frozenset[str]] = field(default_factory=dict)  # key -> hashes
    secrets: frozenset[str] = frozenset()
    networks: frozenset[str] = frozenset()
    volumes: frozenset[str] = frozenset()
    # Compose: per service, the environment and labels its containers' image sets.
    inherited: Mapping[str, tuple[Mapping[str, str], Mapping[str, str]]] = field(
        default_factory=dict)


# --- the desired side: the rendered main file ---------------------------------------


def desired_state(document: Mapping[str, Any], files: Mapping[str, str], target: Target,
                  stack_name: str) -> DesiredState:
    """``document`` (the parsed main file of a bundle whose files are ``files``) as what a
    deploy leaves."""
    document = unescape(document)
    hashes = config_hashes(document, files)
    services = {name: rendered_service(service, target, hashes)
                for name, service in (document.get("services") or {}).items()}
    return DesiredState(
        services=services,
        configs=hashes,
        secrets=frozenset(_engine_names(document.get("secrets"), None)),
        networks=frozenset(_engine_names(document.get("networks"), stack_name)),
        volumes=frozenset(_engine_names(document.get("volumes"), stack_name)),
    )


def config_hashes(document: Mapping[str, Any], files: Mapping[str, str]) -> dict[str, str]:
    """Config key -> content hash of the bundle file it is made of."""
    found = {}
    for key, config in (document.get("configs") or {}).items():
        path = str(config.get("file", "")).removeprefix("./")
        if path in files:
            found[key] = content_hash(files[path])
    return found


def rendered_service(service: Mapping[str, Any], target: Target,
                     config_hashes: Mapping[str, str]) -> ServiceShape:
    """One service of a rendered (and unescaped) Compose or stack file."""
    deploy = service.get("deploy") or {}
    resources = deploy.get("resources") or {}
    limits = resources.get("limits") or {}
    reservations = resources.get("reservations") or {}
    placement = deploy.get("placement") or {}
    own_labels = _own(service.get("labels"))
    if target == "swarm":
        labels, container_labels = _texts(deploy.get("labels")), own_labels
        gpus = [r["discrete_resource_spec"]["kind"]
                for r in reservations.get("generic_resources") or []
                if "discrete_resource_spec" in r]
        replicas: int | str = (GLOBAL if deploy.get("mode") == GLOBAL
                               else int(deploy.get("replicas", 1)))
        preferences = [f"spread={p['spread']}" for p in placement.get("preferences") or []
                       if "spread" in p]
        where = [*(placement.get("constraints") or []), *preferences]
        endpoint: str | None = str(deploy.get("endpoint_mode", "vip"))
    else:
        labels, container_labels = own_labels, {}
        gpus = [d for device in reservations.get("devices") or []
                for d in device.get("device_ids") or []]
        replicas, where, endpoint = int(deploy.get("replicas", 1)), [], None
    return pinned_shape(ServiceShape(
        image=str(service["image"]),
        environment=_texts(service.get("environment")),
        labels=labels,
        container_labels=container_labels,
        cpus=None if limits.get("cpus") is None else parse_cpus(limits["cpus"]),
        memory=None if limits.get("memory") is None else parse_bytes(limits["memory"]),
        gpus=tuple(sorted(str(g) for g in gpus)),
        replicas=replicas,
        placement=tuple(sorted(str(p) for p in where)),
        endpoint_mode=endpoint,
        ports=tuple(sorted(_rendered_port(p, target) for p in service.get("ports") or [])),
        configs={str(c["target"]): config_hashes[c["source"]]
                 for c in service.get("configs") or [] if c["source"] in config_hashes},
    ))


def _rendered_port(port: Mapping[str, Any], target: Target) -> str:
    text = f"{port['published']}:{port['target']}/{port.get('protocol', 'tcp')}"
    return f"{text} ({port.get('mode', 'ingress')})" if target == "swarm" else text


def _engine_names(section: Mapping[str, Any] | None, prefix: str | None) -> list[str]:
    """The engine's names of a file's networks/volumes (``<stack>_<key>`` unless the file
    names them) or secrets (the key: swarmai's are external or files)."""
    names = []
    for key, spec in (section or {}).items():
        given = (spec or {}).get("name")
        names.append(str(given) if given else f"{prefix}_{key}" if prefix else str(key))
    return names


def unescape(value: Any) -> Any:
    """Undo the renderer's ``$`` doubling: what Compose and ``stack deploy`` pass on."""
    if isinstance(value, str):
        return value.replace("$$", "$")
    if isinstance(value, Mapping):
        return {k: unescape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unescape(v) for v in value]
    return value


# --- the live side: what the engine says --------------------------------------------


def swarm_service(service: Mapping[str, Any]) -> ServiceShape:
    """A Swarm service as ``docker service inspect`` (the API) returns it."""
    spec = service["Spec"]
    task = spec.get("TaskTemplate") or {}
    container = task.get("ContainerSpec") or {}
    resources = task.get("Resources") or {}
    limits = resources.get("Limits") or {}
    generic = (resources.get("Reservations") or {}).get("GenericResources") or []
    placement = task.get("Placement") or {}
    mode = spec.get("Mode") or {}
    endpoint = spec.get("EndpointSpec") or {}
    preferences = [f"spread={p['Spread']['SpreadDescriptor']}"
                   for p in placement.get("Preferences") or [] if "Spread" in p]
    return pinned_shape(ServiceShape(
        image=str(container.get("Image", "")),
        environment=env_dict(container.get("Env") or []),
        labels=_own(spec.get("Labels")),
        container_labels=_own(container.get("Labels")),
        cpus=limits.get("NanoCPUs") or None,
        memory=limits.get("MemoryBytes") or None,
        gpus=tuple(sorted(str(r["DiscreteResourceSpec"]["Kind"]) for r in generic
                          if "DiscreteResourceSpec" in r)),
        replicas=(GLOBAL if "Global" in mode
                  else int((mode.get("Replicated") or {}).get("Replicas", 1))),
        placement=tuple(sorted([*(placement.get("Constraints") or []), *preferences])),
        endpoint_mode=str(endpoint.get("Mode") or "vip"),
        ports=tuple(sorted(
            f"{p.get('PublishedPort')}:{p.get('TargetPort')}/{p.get('Protocol', 'tcp')} "
            f"({p.get('PublishMode', 'ingress')})" for p in endpoint.get("Ports") or [])),
        configs={str(c["File"]["Name"]): str(c["ConfigName"]).rsplit("_", 1)[-1]
                 for c in container.get("Configs") or [] if c.get("File")},
    ))


def compose_service(container: Mapping[str, Any], count: int, image: Mapping[str, Any] | None,
                    config_hash: Callable[[str, str], str | None]) -> ServiceShape:
    """A Compose service from one of its ``count`` containers (container inspect), less
    what its ``image`` (image inspect) sets; ``config_hash(source, destination)`` gives
    the content hash of a bind-mounted file that is one of the stack's configs (else
    None)."""
    config = container.get("Config") or {}
    host = container.get("HostConfig") or {}
    inherited_env, inherited_labels = image_defaults(image)
    ports = [f"{binding.get('HostPort')}:{port}"
             for port, bindings in (host.get("PortBindings") or {}).items()
             for binding in bindings or []]
    configs = {}
    for mount in container.get("Mounts") or []:
        found = (config_hash(str(mount.get("Source", "")), str(mount.get("Destination", "")))
                 if mount.get("Type") == "bind" else None)
        if found is not None:
            configs[str(mount["Destination"])] = found
    shape = ServiceShape(
        image=str(config.get("Image", "")),
        environment=env_dict(config.get("Env") or []),
        labels=_own(config.get("Labels")),
        cpus=host.get("NanoCpus") or None,
        memory=host.get("Memory") or None,
        gpus=tuple(sorted(str(d) for r in host.get("DeviceRequests") or []
                          for d in r.get("DeviceIDs") or [])),
        replicas=count,
        ports=tuple(sorted(ports)),
        configs=configs,
    )
    return pinned_shape(shape.without(inherited_env, inherited_labels))


def image_defaults(image: Mapping[str, Any] | None) -> tuple[dict[str, str], dict[str, str]]:
    """The environment and labels an image gives every container (image inspect)."""
    config = (image or {}).get("Config") or {}
    return env_dict(config.get("Env") or []), _texts(config.get("Labels"))


# --- shared pieces --------------------------------------------------------------------


def pinned_shape(shape: ServiceShape) -> ServiceShape:
    """``shape`` with a pinned ``MODEL_URI`` as ``model``/``version`` (see the module doc)."""
    uri = shape.environment.get(_MODEL_URI_ENV)
    parsed = modeluri.match(uri) if uri else None
    if uri is None or parsed is None or parsed.version is None:
        return shape
    environment = {k: v for k, v in shape.environment.items() if k != _MODEL_URI_ENV}
    labels = {k: v for k, v in shape.labels.items()
              if not (k == _MODEL_URI_LABEL and v == uri)}
    return replace(shape, environment=environment, labels=labels, model=parsed.name,
                   version=str(parsed.version))


def env_dict(entries: Sequence[str]) -> dict[str, str]:
    """``["K=V", ...]`` as a mapping."""
    pairs = (entry.partition("=") for entry in entries)
    return {key: value for key, _, value in pairs}


def parse_bytes(size: Any) -> int:
    """A Docker size (``700M``, ``2g``, ``512``) in bytes, with Docker's binary units."""
    match = _SIZE.match(str(size).strip())
    if match is None:
        raise ValueError(f"not a Docker size: {size!r}")
    return int(float(match[1]) * _UNITS[(match[2] or "b").lower()])


def format_bytes(size: int) -> str:
    """Bytes in the largest binary unit that divides them: 734003200 -> ``700M``."""
    for unit in ("P", "T", "G", "M", "K"):
        scale = _UNITS[unit.lower()]
        if size % scale == 0:
            return f"{size // scale}{unit}"
    return str(size)


def parse_cpus(cpus: Any) -> int:
    return round(float(cpus) * 1e9)


def format_cpus(nano: int) -> str:
    return f"{nano / 1e9:g}"


def _own(labels: Mapping[str, Any] | None) -> dict[str, str]:
    """Labels less the ones the engine adds (stack namespace, compose project...), and
    the Compose file-contents label: the ``configs.`` fields already show that change."""
    return {k: v for k, v in _texts(labels).items()
            if not k.startswith(ENGINE_LABEL_PREFIXES) and k != FILES_LABEL}


def _texts(values: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k): "" if v is None else str(v) for k, v in (values or {}).items()}


def _minus(values: Mapping[str, str], inherited: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in values.items() if inherited.get(k) != v}
