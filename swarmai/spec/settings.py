"""Cross-field rules of a model's server settings.

``environment``, ``volumes``, ``resources.reservations`` and ``server`` are
checked here against what swarmai itself renders into the model's server
(:mod:`.reserved`) and against what its runtime can honour.
"""

from __future__ import annotations

from collections.abc import Iterator

from swarmai.spec.fields import Runtime, size_bytes
from swarmai.spec.findings import Finding, Loc
from swarmai.spec.models import Model, Server, Stack
from swarmai.spec.reserved import SHM, env_instead, is_reserved_volume, reserved_targets

_ALL_SERVER_KEYS = tuple(Server.model_fields)
# The server keys each runtime can honour.  TF Serving has a request timeout
# flag, but no worker count, body-size limit or request queue of its own.
SERVER_KEYS: dict[Runtime, tuple[str, ...]] = {
    "fastapi": _ALL_SERVER_KEYS,
    "torchserve": ("workers", "max_body_mb", "max_queue", "timeout_s"),
    "tfserving": ("timeout_s",),
}


def check_model_settings(stack: Stack) -> Iterator[Finding]:
    """Every problem of the models' environment, volumes, reservations and server keys."""
    for index, model in enumerate(stack.models):
        loc: Loc = ("models", index)
        yield from _environment(model, loc)
        yield from _volumes(model, loc)
        yield from _reservations(model, loc)
        yield from _server_keys(model, loc)


def _environment(model: Model, loc: Loc) -> Iterator[Finding]:
    for name in model.environment:
        instead = env_instead(name)
        if instead is not None:
            yield Finding((*loc, "environment", name),
                          f"variable {name} is reserved by swarmai", instead)


def _volumes(model: Model, loc: Loc) -> Iterator[Finding]:
    seen: dict[str, int] = {}
    reserved = reserved_targets(model.runtime)
    for position, volume in enumerate(model.volumes):
        here: Loc = (*loc, "volumes", position)
        clash = next((path for path in reserved if _overlaps(volume.target, path)), None)
        if volume.target in seen:
            yield Finding((*here, "target"),
                          f"{volume.target} is already mounted by volumes[{seen[volume.target]}]",
                          "mount each path once")
        elif clash is not None:
            yield Finding((*here, "target"),
                          f"swarmai mounts {clash} itself" if clash == volume.target
                          else f"{volume.target} overlaps {clash}, which swarmai mounts itself",
                          "set shm_size: to size /dev/shm" if clash == SHM
                          else "mount somewhere else, for example under /opt or /data")
        seen.setdefault(volume.target, position)
        if not volume.source.startswith("/") and is_reserved_volume(volume.source):
            yield Finding((*here, "source"),
                          f"volume {volume.source!r} belongs to swarmai's own services",
                          "give your volume another name")


def _overlaps(path: str, other: str) -> bool:
    """Whether ``path`` is ``other``, inside it, or holds it (paths are normalised)."""
    return path == other or path.startswith(other + "/") or other.startswith(path + "/")


def _reservations(model: Model, loc: Loc) -> Iterator[Finding]:
    resources = model.resources
    if resources is None or resources.reservations is None:
        return
    wanted = resources.reservations
    here: Loc = (*loc, "resources", "reservations")
    if wanted.cpus is not None and resources.cpus is not None \
            and float(wanted.cpus) > float(resources.cpus):
        yield Finding((*here, "cpus"),
                      f"reserves {wanted.cpus} CPUs, above the limit resources.cpus "
                      f"{resources.cpus}", "reserve at most the limit, or raise the limit")
    if wanted.memory is not None and resources.memory is not None \
            and size_bytes(wanted.memory) > size_bytes(resources.memory):
        yield Finding((*here, "memory"),
                      f"reserves {wanted.memory}, above the limit resources.memory "
                      f"{resources.memory}", "reserve at most the limit, or raise the limit")


def _server_keys(model: Model, loc: Loc) -> Iterator[Finding]:
    if model.server is None or model.runtime == "app":
        return  # an app's server: is refused whole (checks.py), not key by key
    supported = SERVER_KEYS[model.runtime]
    for key in _ALL_SERVER_KEYS:
        if getattr(model.server, key) is not None and key not in supported:
            yield Finding((*loc, "server", key),
                          f"runtime {model.runtime} cannot honour server.{key}",
                          f"{model.runtime} supports server.{', server.'.join(supported)} "
                          f"only; remove {key}")
