"""The host side of a stack's registry (MLflow, with its artifacts on S3): typed results.

MLflow is not published to the world, so every operation runs in a one-off
container of swarmai's server image attached to the stack's ``models`` network
(``python -m swarmai.incontainer.registry_ops``), which answers in JSON.  This
module turns each answer into a frozen dataclass at once, so nothing past it
reads a raw dict; ``as_dict`` gives the JSON back, as ``swarmai models ...
--output json`` prints it (versions as strings, as MLflow writes them).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from swarmai import modeluri
from swarmai.engine import Engine, ensure_image, run_oneoff
from swarmai.errors import OperationError, UsageError
from swarmai.render.naming import MLFLOW_CLIENT_ENV, mlflow_url

_INPUT = "/input"
_T = TypeVar("_T")


@dataclass(frozen=True)
class RegistryTarget:
    """Where a stack's MLflow is reached from: its network, with swarmai's server image."""

    stack_name: str
    network: str
    image: str


# --- what the registry answers --------------------------------------------------


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model."""

    name: str
    version: int
    aliases: tuple[str, ...]
    status: str = "READY"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": str(self.version),
                "aliases": list(self.aliases), "status": self.status}


@dataclass(frozen=True)
class CheckResult:
    """Whether a stack's model URI resolves in MLflow, and to what."""

    uri: str
    found: bool
    version: int | None = None
    error: str | None = None
    canary: int | None = None  # the version a canary of this alias serves, if one runs
    pending: modeluri.Pending | None = None  # a promotion of this alias that never finished
    # What the resolved version (and canary) recorded it needs, where the check was asked.
    requirements: tuple[ModelRequirements, ...] = ()


@dataclass(frozen=True)
class VersionFacts:
    """One version, with the metrics of the run that produced it."""

    version: int
    run_id: str | None
    metrics: Mapping[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {"version": str(self.version), "run_id": self.run_id,
                "metrics": dict(self.metrics)}


@dataclass(frozen=True)
class ModelDescription:
    """A registered model: its aliases, swarmai's tags, and the facts of some versions."""

    name: str
    aliases: Mapping[str, int]
    tags: Mapping[str, str]  # swarmai.* tags only, as MLflow stores them
    versions: Mapping[int, VersionFacts]

    def previous(self, alias: str) -> int | None:
        """The version ``alias`` pointed at before its last move (None: not on record)."""
        return _optional_version(self.tags.get(modeluri.previous_tag(alias)))

    def pending(self, alias: str) -> modeluri.Pending | None:
        """A promotion of ``alias`` that moved (or was about to move) the alias and did not
        finish: killed, crashed, or its restore failed too (None: none)."""
        return modeluri.decode_pending(self.tags.get(modeluri.pending_tag(alias)))

    def canary(self, alias: str) -> int | None:
        """The version a running canary of ``alias`` serves (None: no canary)."""
        return _optional_version(modeluri.canary_version(self.tags.get(modeluri.canary_tag(alias))))

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name,
                "aliases": {alias: str(version) for alias, version in self.aliases.items()},
                "tags": dict(self.tags),
                "versions": {str(v): facts.as_dict() for v, facts in self.versions.items()}}


@dataclass(frozen=True)
class AliasMove:
    """Where an alias pointed before a move (None: it did not exist) and whether it moved."""

    name: str
    alias: str
    version: int
    previous: int | None
    changed: bool


@dataclass(frozen=True)
class Preflight:
    """A version's artifacts downloaded, and what was checked about them."""

    uri: str
    runtime: str
    checked: str


@dataclass(frozen=True)
class ModelRequirements:
    """The ``requirements.txt`` MLflow recorded with a version (``models:/NAME/VERSION``)."""

    uri: str
    lines: tuple[str, ...]
    recorded: bool  # False: the version has no requirements file


@dataclass(frozen=True)
class ModelSummary:
    """One registered model as a backup records it: every version (with its tags),
    alias and tag."""

    versions: Mapping[int, Mapping[str, str]]
    aliases: Mapping[str, int]
    tags: Mapping[str, str]


@dataclass(frozen=True)
class RegistrySummary:
    """Everything registered in a stack's MLflow (``swarmai backup`` records it)."""

    models: Mapping[str, ModelSummary]

    def counts(self) -> dict[str, int]:
        found = self.models.values()
        return {"models": len(self.models), "versions": sum(len(m.versions) for m in found),
                "aliases": sum(len(m.aliases) for m in found),
                "tags": sum(len(m.tags) for m in found)}

    def as_dict(self) -> dict[str, Any]:
        return {"models": {name: {
            "versions": {str(v): {"tags": dict(tags)} for v, tags in model.versions.items()},
            "aliases": {alias: str(v) for alias, v in model.aliases.items()},
            "tags": dict(model.tags)} for name, model in self.models.items()}}


def registry_summary(raw: Mapping[str, Any]) -> RegistrySummary:
    """A :class:`RegistrySummary` from its JSON form (the registry's answer, a manifest)."""
    return RegistrySummary({str(name): ModelSummary(
        versions={_version(v): {str(k): str(t) for k, t in (facts.get("tags") or {}).items()}
                  for v, facts in model["versions"].items()},
        aliases={str(a): _version(v) for a, v in model["aliases"].items()},
        tags={str(k): str(t) for k, t in model["tags"].items()},
    ) for name, model in raw["models"].items()})


class ModelRegistry(Protocol):
    """What promotion asks of a registry (:class:`RegistryClient`, or a test's fake)."""

    @property
    def target(self) -> RegistryTarget: ...

    def describe(self, name: str, versions: Sequence[str] = ()) -> ModelDescription: ...

    def move_alias(self, name: str, alias: str, version: int | str, *,
                   remember: bool = True) -> AliasMove: ...

    def set_tag(self, name: str, key: str, value: str | None) -> None: ...

    def preflight(self, name: str, version: int | str, runtime: str, *,
                  image: str | None = None) -> Preflight: ...

    def requirements(self, uris: Sequence[str]) -> list[ModelRequirements]: ...


# --- the client -----------------------------------------------------------------


@dataclass(frozen=True)
class RegistryClient:
    """A stack's registry, reached from a one-off container on its network."""

    engine: Engine
    target: RegistryTarget

    def check(self, uris: Sequence[str], *,
              requirements_for: Sequence[str] = ()) -> list[CheckResult]:
        """Resolve every URI in MLflow; each result says whether it was found.  For the
        URIs in ``requirements_for``, the result also holds the requirements of the
        versions it resolved to (as :meth:`requirements` reads them), in the same
        container."""
        flags = [arg for uri in requirements_for for arg in ("--requirements-for", uri)]
        return self._call(["check", *uris, *flags], "checking models in MLflow",
                          lambda answer: [_check_result(r) for r in answer])

    def push(self, name: str, path: Path, alias: str | None,
             metrics: Mapping[str, float] | None = None) -> ModelVersion:
        """Register the model at ``path`` as ``name``, with evaluation ``metrics`` on its run."""
        if not path.exists():
            raise UsageError(f"{path}: no such file or directory")
        source = path.resolve()
        mount = (str(source), f"{_INPUT}/{source.name}", "ro")
        command = ["push", name, f"{_INPUT}/{source.name}"]
        if alias:
            command += ["--alias", alias]
        for key, value in (metrics or {}).items():
            command += ["--metric", f"{key}={value!r}"]
        return self._call(command, f"pushing {path} as {name}", _model_version, volumes=[mount])

    def versions(self) -> list[ModelVersion]:
        """Every version of every registered model, newest first within a model."""
        return self._call(["list"], "listing models in MLflow",
                          lambda answer: [_model_version(v) for v in answer])

    def summary(self) -> RegistrySummary:
        """Every registered model: its versions, aliases and tags."""
        return self._call(["summary"], "reading the registry's contents", registry_summary)

    def describe(self, name: str, versions: Sequence[str] = ()) -> ModelDescription:
        """``name``'s aliases, swarmai tags, and the run metrics of ``versions`` and of each
        alias's version."""
        command = ["describe", name, *(arg for v in versions for arg in ("--version", v))]
        return self._call(command, f"describing {name}", _description)

    def move_alias(self, name: str, alias: str, version: int | str, *,
                   remember: bool = True) -> AliasMove:
        """Point ``alias`` at ``version``; the answer says where it pointed before."""
        command = ["move-alias", name, alias, str(version), *([] if remember else ["--forget"])]
        return self._call(command, f"moving {name}@{alias} to version {version}", _alias_move)

    def set_tag(self, name: str, key: str, value: str | None) -> None:
        """Set (``None``: delete) one of swarmai's ``swarmai.*`` tags on registered model
        ``name``."""
        self._call(["tag", name, key, *([] if value is None else [value])], f"tagging {name}",
                   lambda answer: None)

    def preflight(self, name: str, version: int | str, runtime: str, *,
                  image: str | None = None) -> Preflight:
        """Download version ``version`` of ``name`` and check ``runtime`` can load it, in
        ``image`` (a model's own server image) or else the registry target's."""
        return self._call(["preflight", name, str(version), "--runtime", runtime],
                          f"pre-flight of {modeluri.version_uri(name, version)}",
                          lambda a: Preflight(str(a["uri"]), str(a["runtime"]), str(a["checked"])),
                          image=image)

    def requirements(self, uris: Sequence[str]) -> list[ModelRequirements]:
        """What each version (``models:/NAME/VERSION``) recorded it needs installed."""
        if not uris:
            return []
        return self._call(["requirements", *uris], "reading the models' requirements",
                          lambda answer: [_requirements(r) for r in answer])

    def _call(self, command: list[str], what: str, parse: Callable[[Any], _T], *,
              volumes: list[tuple[str, str, str]] | None = None,
              image: str | None = None) -> _T:
        target = self.target if image is None else replace(self.target, image=image)
        answer = _run(self.engine, target, command, what=what, volumes=volumes)
        try:
            return parse(answer)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise OperationError(f"{what}: the registry container answered in an unexpected "
                                 f"form: {json.dumps(answer)[:300]}") from None


# --- reading the answers ----------------------------------------------------------


def _version(value: Any) -> int:
    return int(str(value))


def _optional_version(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return _version(value)
    except ValueError:
        return None


def _check_result(raw: Mapping[str, Any]) -> CheckResult:
    found = bool(raw["found"])
    return CheckResult(
        uri=str(raw["uri"]), found=found,
        version=_version(raw["version"]) if found else None,
        error=None if raw.get("error") is None else str(raw["error"]),
        canary=_optional_version(raw.get("canary")),
        pending=modeluri.decode_pending(raw.get("pending")),
        requirements=tuple(_requirements(r) for r in raw.get("requirements") or ()),
    )


def _model_version(raw: Mapping[str, Any]) -> ModelVersion:
    return ModelVersion(str(raw["name"]), _version(raw["version"]),
                        tuple(str(a) for a in raw.get("aliases") or ()),
                        str(raw.get("status", "READY")))


def _description(raw: Mapping[str, Any]) -> ModelDescription:
    versions = {}
    for facts in raw["versions"].values():
        version = _version(facts["version"])
        metrics = {str(k): float(v) for k, v in (facts.get("metrics") or {}).items()}
        versions[version] = VersionFacts(version, facts.get("run_id"), metrics)
    return ModelDescription(
        name=str(raw["name"]),
        aliases={str(alias): _version(v) for alias, v in raw["aliases"].items()},
        tags={str(k): str(v) for k, v in (raw.get("tags") or {}).items()},
        versions=versions,
    )


def _requirements(raw: Mapping[str, Any]) -> ModelRequirements:
    return ModelRequirements(str(raw["uri"]), tuple(str(line) for line in raw["lines"]),
                             bool(raw["recorded"]))


def _alias_move(raw: Mapping[str, Any]) -> AliasMove:
    return AliasMove(str(raw["name"]), str(raw["alias"]), _version(raw["version"]),
                     _optional_version(raw["previous"]), bool(raw["changed"]))


def _run(engine: Engine, target: RegistryTarget, command: list[str], *,
         what: str, volumes: list[tuple[str, str, str]] | None = None) -> Any:
    # An image of a registry (a cluster's) is pulled on this node; a local one must be built.
    if not ensure_image(engine, target.image):
        raise OperationError(f"{what}: image {target.image} is not built yet; run "
                             "`swarmai images build` (with --offline if you deploy with it)")
    result = run_oneoff(
        engine,
        target.image,
        ["python", "-m", "swarmai.incontainer.registry_ops", "--tracking-uri", mlflow_url(),
         *command],
        network=target.network,
        volumes=volumes or [],
        envs={"HOME": "/tmp", "GIT_PYTHON_REFRESH": "quiet", **MLFLOW_CLIENT_ENV},
        user=f"{os.getuid()}:{os.getgid()}" if volumes else None,
        what=what,
    )
    lines = result.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else None
    except ValueError:
        answer = None
    if isinstance(answer, dict) and "error" in answer:
        raise OperationError(f"{what}: {answer['error']}")
    if result.return_code != 0 or answer is None:
        raise OperationError(f"{what}: the registry container failed",
                             return_code=result.return_code,
                             stderr=result.stderr or result.stdout)
    return answer
