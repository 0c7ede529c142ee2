"""`swarmai plan`: what a deploy would create, change or remove, and what restarts.

The desired and live states (:mod:`.plan_shapes`, read by :mod:`.plan_live`)
are compared here, purely: services field by field, configs by content hash,
secrets, networks and volumes by name.  A secret is named, never shown: the
plan holds no secret value because nothing it is built from holds one (the
environment never carries secrets in swarmai; secret files are only listed).

Which changes restart what, per target:

- Swarm: a change to the task template (image, version, env, container labels,
  resources, placement, ports, endpoint mode, mounted configs) rolls the
  service's tasks; replicas only scale; the service's own labels (deploy.labels,
  where Traefik's routes live) are updated in place.  Placement counts as a
  restart although Swarm keeps a task whose node still satisfies it.
- Compose: any change to a container's configuration re-creates its
  containers (labels, routes included); replicas only scale; a mounted config
  file's content re-creates them too (swarmai labels each service with a hash
  of its files, render/compose.py: a running container never sees a replaced
  file).

The field names are the same on both targets; only ``restarts`` differs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from swarmai.lifecycle.plan_shapes import DesiredState, LiveState, ServiceShape
from swarmai.registry_client import CheckResult
from swarmai.render import naming
from swarmai.spec import Stack, Target

# Exit code of `swarmai plan` when a deploy would change something (0: nothing
# would; 1: the plan failed; 2: invalid input, as for every command).
CHANGES_PENDING_EXIT = 3

Action = Literal["create", "change", "remove"]
KINDS = ("service", "config", "secret", "network", "volume")
_SYMBOLS = {"create": "+", "change": "~", "remove": "-"}
# Fields (a name, or a prefix ending in ".") whose change restarts nothing.
_IN_PLACE: Mapping[str, tuple[str, ...]] = {
    "swarm": ("replicas", "labels."),
    "compose": ("replicas",),
}
# Where a field sorts in a service's list: the model first, maps last.
_FIELD_ORDER = ("image", "model", "version", "replicas", "resources.", "placement",
                "endpoint_mode", "ports", "env.", "labels.", "container_labels.", "configs.")


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: str | None
    after: str | None
    restarts: bool

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "before": self.before, "after": self.after,
                "restarts": self.restarts}


@dataclass(frozen=True)
class Change:
    kind: str  # one of KINDS
    name: str  # service, config key, or the engine's name of a secret/network/volume
    action: Action
    fields: tuple[FieldChange, ...] = ()
    restarts: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "action": self.action,
                "restarts": self.restarts, "fields": [f.as_dict() for f in self.fields]}


@dataclass(frozen=True)
class ModelLine:
    """One model: the version its URI resolves to in MLflow now, and the one that runs."""

    model: str
    uri: str
    registry: str | None  # the version, when resolved
    registry_state: Literal["resolved", "missing", "unknown"]
    running: str | None  # the pinned version that runs
    running_state: Literal["pinned", "alias", "not running"]
    canary: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "uri": self.uri, "registry": self.registry,
                "registry_state": self.registry_state, "running": self.running,
                "running_state": self.running_state, "canary": self.canary}


@dataclass(frozen=True)
class Plan:
    stack: str
    target: Target
    changes: tuple[Change, ...] = ()
    models: tuple[ModelLine, ...] = field(default_factory=tuple)

    @property
    def pending(self) -> bool:
        return bool(self.changes)

    def as_dict(self) -> dict[str, Any]:
        """The JSON document of ``swarmai plan -o json`` (README: "swarmai plan")."""
        counts = {a: sum(c.action == a for c in self.changes) for a in _SYMBOLS}
        return {"stack": self.stack, "target": self.target, "pending": self.pending,
                "summary": counts, "changes": [c.as_dict() for c in self.changes],
                "models": [m.as_dict() for m in self.models]}


# --- the diff -----------------------------------------------------------------------


def diff(desired: DesiredState, live: LiveState, target: Target) -> list[Change]:
    """Everything a deploy of ``desired`` would do to ``live``, in a stable order.

    Secrets, networks and volumes are only ever created: deploy and up never
    remove one (`swarmai rm/down --volumes` does).
    """
    changes = _service_changes(desired, live, target)
    for key in sorted(desired.configs.keys() | live.configs.keys()):
        want, have = desired.configs.get(key), live.configs.get(key, frozenset())
        if want is None:
            changes.append(Change("config", key, "remove"))
        elif not have:
            changes.append(Change("config", key, "create"))
        elif want not in have:
            before = ",".join(sorted(have))
            changes.append(Change("config", key, "change",
                                  (FieldChange("content", before, want, False),)))
    for kind, wanted, present in (("secret", desired.secrets, live.secrets),
                                  ("network", desired.networks, live.networks),
                                  ("volume", desired.volumes, live.volumes)):
        changes += [Change(kind, name, "create") for name in sorted(wanted - present)]
    return sorted(changes, key=lambda c: (KINDS.index(c.kind), c.name))


def _service_changes(desired: DesiredState, live: LiveState, target: Target) -> list[Change]:
    changes = []
    for name in sorted(desired.services.keys() | live.services.keys()):
        want, have = desired.services.get(name), live.services.get(name)
        if have is None:
            changes.append(Change("service", name, "create"))
        elif want is None:
            changes.append(Change("service", name, "remove"))
        else:
            fields = service_fields(want, have, target, live.inherited.get(name))
            if fields:
                changes.append(Change("service", name, "change", fields,
                                      any(f.restarts for f in fields)))
    return changes


def service_fields(want: ServiceShape, have: ServiceShape, target: Target,
                   inherited: tuple[Mapping[str, str], Mapping[str, str]] | None = None,
                   ) -> tuple[FieldChange, ...]:
    """The fields that differ, each with whether its change restarts the service."""
    if inherited is not None:  # what the live containers' image sets is not the stack's
        want = want.without(*inherited)
    if "@" not in want.image:  # stack deploy may have resolved a digest
        have = replace(have, image=have.image.split("@")[0])
    after, before = want.fields(), have.fields()
    names = sorted((n for n in after.keys() | before.keys() if after.get(n) != before.get(n)),
                   key=lambda n: (_field_rank(n), n))
    return tuple(FieldChange(n, before.get(n), after.get(n), field_restarts(n, target))
                 for n in names)


def field_restarts(name: str, target: Target) -> bool:
    """Whether a change of field ``name`` replaces the service's tasks/containers."""
    return not any(name == p or (p.endswith(".") and name.startswith(p))
                   for p in _IN_PLACE[target])


def _field_rank(name: str) -> int:
    for rank, prefix in enumerate(_FIELD_ORDER):
        if name == prefix or (prefix.endswith(".") and name.startswith(prefix)):
            return rank
    return len(_FIELD_ORDER)


# --- the models -----------------------------------------------------------------------


def model_lines(stack: Stack, results: Sequence[CheckResult] | None,
                live: LiveState) -> list[ModelLine]:
    """Each model's registry version now (``results``; None: the registry is not running)
    and the version its live server is pinned to."""
    by_uri = {r.uri: r for r in results or ()}
    lines = []
    for model in stack.models:
        if model.model is None:
            continue  # an app that loads no registry model: its image is its version
        found = by_uri.get(model.model)
        registry_state: Literal["resolved", "missing", "unknown"] = (
            "unknown" if results is None else "resolved" if found and found.found
            else "missing")
        server = live.services.get(naming.model_service(model))
        running_state: Literal["pinned", "alias", "not running"] = (
            "not running" if server is None else "pinned" if server.version else "alias")
        lines.append(ModelLine(
            model=model.name, uri=model.model,
            registry=str(found.version) if registry_state == "resolved" and found else None,
            registry_state=registry_state,
            running=server.version if server is not None else None,
            running_state=running_state,
            canary=None if found is None or found.canary is None else str(found.canary),
        ))
    return lines


def running_versions(stack: Stack, live: LiveState) -> tuple[dict[str, str], dict[str, str]]:
    """The versions (and canary versions) the live FastAPI servers (and apps) of
    ``stack``'s aliased models are pinned to: what to render with when the registry
    cannot be asked."""
    pinned: dict[str, str] = {}
    canaries: dict[str, str] = {}
    for model in stack.models:
        if not model.pinned_by_deploy:
            continue
        for found, service in ((pinned, naming.model_service(model)),
                               (canaries, naming.canary_service(model))):
            shape = live.services.get(service)
            if shape is not None and shape.version is not None:
                found[model.name] = shape.version
    return pinned, canaries


# --- the report ---------------------------------------------------------------------


def format_text(data: Mapping[str, Any]) -> str:
    """The plan as people read it, from :meth:`Plan.as_dict` (so text and JSON agree)."""
    summary = data["summary"]
    head = f"stack {data['stack']} ({data['target']}): "
    if not data["pending"]:
        lines = [head + "no changes"]
    else:
        lines = [head + f"{summary['change']} to change, {summary['create']} to create, "
                 f"{summary['remove']} to remove"]
    for change in data["changes"]:
        line = f"{_SYMBOLS[change['action']]} {change['kind']} {change['name']}"
        if change["kind"] == "service" and change["action"] == "change":
            line += " (restarts)" if change["restarts"] else " (in place, no restart)"
        lines.append(line)
        lines += [f"    {f['field']}: {_shown(f['before'])} -> {_shown(f['after'])}"
                  for f in change["fields"]]
    if data["models"]:
        lines.append("models:")
        width = max(len(m["model"]) for m in data["models"])
        uri_width = max(len(m["uri"]) for m in data["models"])
        for model in data["models"]:
            line = (f"  {model['model']:<{width}}  {model['uri']:<{uri_width}}  "
                    f"registry: {_registry_text(model)}  running: {_running_text(model)}")
            if model.get("canary"):
                line += f"  canary: {model['canary']}"
            lines.append(line)
    return "\n".join(lines)


def _shown(value: str | None) -> str:
    return "(none)" if value is None else value


def _registry_text(model: Mapping[str, Any]) -> str:
    state = model["registry_state"]
    if state == "resolved":
        return str(model["registry"])
    return "not found" if state == "missing" else "unknown (registry not running)"


def _running_text(model: Mapping[str, Any]) -> str:
    state = model["running_state"]
    if state == "pinned":
        return str(model["running"])
    return "follows the alias" if state == "alias" else "none (not deployed)"
