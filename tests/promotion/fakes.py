"""In-memory stand-ins for the two systems promotion drives: the registry and the engine.

:class:`FakeRegistry` answers like :class:`swarmai.registry_client.RegistryClient`
(with the MLflow semantics of ``swarmai.incontainer.registry_ops.aliases``: an
alias move remembers the old target in ``swarmai.previous.<alias>`` and is
idempotent).  :class:`FakeBackend` implements the
:class:`swarmai.lifecycle.backend.Backend` protocol: ``start`` makes each model
serve the version its alias points at, unless that version is set to break.
Both record what they were asked, in order, in one shared ``calls`` list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from swarmai import modeluri
from swarmai.engine import Engine
from swarmai.errors import OperationError
from swarmai.lifecycle.status import ServiceStatus
from swarmai.lifecycle.steps import Prepared, StartOptions, StartReport, StopReport
from swarmai.registry_client import (
    AliasMove,
    ModelDescription,
    ModelRequirements,
    Preflight,
    RegistryTarget,
    VersionFacts,
)
from swarmai.render import Bundle
from swarmai.spec import Stack, Target

Progress = Callable[[str], None]


@dataclass
class FakeRegistry:
    """One MLflow registry in memory: registered model name -> versions, aliases, tags."""

    versions: dict[str, set[int]]
    aliases: dict[str, dict[str, int]]
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    target: RegistryTarget = field(
        default_factory=lambda: RegistryTarget("demo", "demo_models", "swarmai/server:test"))

    def describe(self, name: str, versions: Sequence[str] = ()) -> ModelDescription:
        self.calls.append(("describe", name))
        aliases = dict(self.aliases.get(name, {}))
        wanted = dict.fromkeys([*(int(v) for v in versions), *aliases.values()])
        return ModelDescription(
            name=name, aliases=aliases, tags=dict(self.tags.get(name, {})),
            versions={v: VersionFacts(v, f"run{v}", {}) for v in wanted})

    def move_alias(self, name: str, alias: str, version: int | str, *,
                   remember: bool = True) -> AliasMove:
        self.calls.append(("move_alias", name, alias, int(version), remember))
        self._require(name, int(version))
        current = self.aliases.setdefault(name, {})
        previous = current.get(alias)
        if previous == int(version):
            return AliasMove(name, alias, int(version), previous, changed=False)
        tags = self.tags.setdefault(name, {})
        if remember:
            pending = modeluri.Pending(None if previous is None else str(previous), str(version),
                                       tags.get(modeluri.previous_tag(alias)))
            tags[modeluri.pending_tag(alias)] = pending.encode()
            if previous is not None:
                tags[modeluri.previous_tag(alias)] = str(previous)
        current[alias] = int(version)
        return AliasMove(name, alias, int(version), previous, changed=True)

    def set_tag(self, name: str, key: str, value: str | None) -> None:
        self.calls.append(("set_tag", name, key, value))
        tags = self.tags.setdefault(name, {})
        if value is None:
            tags.pop(key, None)
        else:
            tags[key] = value

    def preflight(self, name: str, version: int | str, runtime: str, *,
                  image: str | None = None) -> Preflight:
        self.calls.append(("preflight", name, int(version)))
        self._require(name, int(version))
        uri = modeluri.version_uri(name, version)
        return Preflight(uri, runtime, "loads (fake)")

    def requirements(self, uris: Sequence[str]) -> list[ModelRequirements]:
        """Every version records only what the server image has: no image to build."""
        return [ModelRequirements(uri, ("mlflow==3.17.2",), recorded=True) for uri in uris]

    def _require(self, name: str, version: int) -> None:
        if version not in self.versions.get(name, set()):
            raise OperationError(f"moving {name}: RESOURCE_DOES_NOT_EXIST: version {version}")


@dataclass
class FakeBackend:
    """A target that serves, per model, the version its alias points at when started.

    ``broken``: versions whose servers never get healthy (``start`` fails and,
    as Swarm does, the old servers keep serving); ``unanswered``: versions that
    start but are never what the gateway answers with (a failed version check).
    """

    registry: FakeRegistry
    target: Target = "swarm"
    broken: set[int] = field(default_factory=set)
    unanswered: set[int] = field(default_factory=set)
    fail_roll_back: bool = False
    serving: dict[str, int] = field(default_factory=dict)  # stack model name -> version
    state_dir: Path | None = None
    files: dict[str, str | None] = field(default_factory=dict)

    @property
    def engine(self) -> Engine:
        # Promotion builds a model's own image on it only when its requirements
        # need more than the server image, which the fake registry's never do:
        # no engine is ever used.
        return cast(Engine, None)

    @property
    def calls(self) -> list[tuple[Any, ...]]:
        return self.registry.calls

    def start(self, stack: Stack, stack_file: Path, options: StartOptions,
              progress: Progress) -> StartReport:
        self.calls.append(("start", self.target))
        wanted = {}
        for model in stack.models:
            if model.model is None:
                continue  # an app that loads no registry model: its image is its version
            uri = modeluri.parse(model.model)
            version = (uri.version if uri.alias is None
                       else self.registry.aliases.get(uri.name, {}).get(uri.alias))
            if version is not None:
                wanted[model.name] = version
        failed = sorted(v for v in wanted.values() if v in self.broken)
        if failed:
            raise OperationError(f"stack {stack.name}: version {failed[0]} failed its "
                                 "healthcheck")
        self.serving.update(wanted)
        bundle = Bundle(target=self.target, main="stack.yml", files={})
        return StartReport(Prepared(stack, self.target, bundle, Path("/nonexistent")))

    def restart(self, stack: Stack, service: str, *, timeout_s: float,
                progress: Progress) -> None:
        self.calls.append(("restart", service))

    def roll_back(self, stack: Stack, service: str, *, timeout_s: float,
                  progress: Progress) -> bool:
        self.calls.append(("roll_back", service))
        if self.fail_roll_back:
            raise OperationError(f"service {service} was not rolled back within 1 s")
        return self.target == "swarm"

    def stop(self, stack: Stack, *, volumes: bool, progress: Progress) -> StopReport:
        self.calls.append(("stop", volumes))
        return StopReport()

    def rows(self, stack: Stack) -> list[ServiceStatus]:
        return []

    def write_gateway_file(self, stack: Stack, name: str, text: str | None, *,
                           image: str) -> None:
        self.calls.append(("write_gateway_file", name, text is not None))
        self.files[name] = text

    def answers(self, model: str) -> int | None:
        """The version the gateway answers with for ``model``."""
        version = self.serving.get(model)
        return None if version in self.unanswered else version
