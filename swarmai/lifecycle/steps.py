"""The steps deploy (Swarm) and up (Compose) share, in the order :func:`start` runs them.

    1. check the engine        it can run the stack (Swarm: this node is a manager, the
                               GPUs the stack pins exist and nobody else holds them);
                               the registry's new images can open its data, else exit 2
                               before anything changes (:mod:`.upgrades`)
    2. render                  images resolved, the bundle written to the state directory
    3. images                  with images.registry: pushed there, pinned by digest;
                               else: swarmai's own images are built on this engine
    4. cluster network         ipvs: auto on several nodes: decided by every node's kernel
    5. secrets                 missing ones created with random values, never overwritten
    6. registry first          Swarm: the data node labelled once; then MLflow, its
                               database and the S3 store, up to date
    7. check models            every model URI resolves in MLflow, else: the push to run;
                               deploy / up undo a promotion that died half-way
    8. model images            each FastAPI version's recorded requirements the server
                               image lacks: a layer built once per set (and pushed)
    9. pin                     re-rendered with the versions the aliases resolved to
                               and the images they need
   10. model servers           deployed (Swarm) or started (Compose), health-gated
   11. routes                  every model answers through the gateway
   12. tidy                    what the deploy no longer uses (Swarm: old configs)

Steps 1, 4, 5, 6, 10 and 12 are the target's (:class:`StartSteps`, implemented by the
Swarm and Compose backends); the rest is here, the same for both.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import yaml

from swarmai import engine as docker
from swarmai import modeluri
from swarmai.engine import Engine
from swarmai.errors import OperationError
from swarmai.images.publish import in_registry, publish
from swarmai.lifecycle import interrupted
from swarmai.lifecycle.ipvs import resolve_ipvs
from swarmai.lifecycle.model_images import requirement_uris, with_model_images
from swarmai.lifecycle.plan_shapes import LiveState
from swarmai.lifecycle.routes import RouteCheck, check_routes
from swarmai.lifecycle.upgrade_rules import rolls_stop_first
from swarmai.lifecycle.upgrades import check_registry_images
from swarmai.registry_client import (
    CheckResult,
    ModelRequirements,
    RegistryClient,
    RegistryTarget,
)
from swarmai.render import Bundle, Serving, render_bundle
from swarmai.render.gateway import DYNAMIC_VOLUME
from swarmai.render.naming import REGISTRY_NET, REGISTRY_PROXY
from swarmai.spec import DEFAULT_IMAGES, Stack, Target, image_for
from swarmai.spec.fields import FrozenDict
from swarmai.writer import write_bundle

Progress = Callable[[str], None]

# Services brought up before the models, so the registry can be checked (and
# filled) before any model server starts.  Not the gateway: its routes depend
# on the models, and a deploy that stops at the check must change nothing else.
_REGISTRY_SERVICES = ("mlflow", "postgres", "s3", REGISTRY_PROXY)


@dataclass(frozen=True)
class StartOptions:
    """How deploy / up run (the state directory is the backend's)."""

    offline: bool = False
    ipvs: bool | None = None
    timeout_s: float = 600.0
    gateway_host: str = "127.0.0.1"
    # deploy / up as a person runs them: undo promotions that died half-way
    # (lifecycle/interrupted.py); a promotion's own roll keeps its record.
    undo_interrupted: bool = False
    upgrade_registry: bool = False  # MLflow's schema may migrate: a backup was taken


@dataclass(frozen=True)
class Prepared:
    stack: Stack  # with the images actually used
    target: Target
    bundle: Bundle
    directory: Path
    ipvs: bool = True
    stop_first: frozenset[str] = frozenset()  # services that roll stop-first this time

    @property
    def main_file(self) -> Path:
        return self.directory / self.bundle.main

    @property
    def registry_network(self) -> str:
        """Where swarmai's registry jobs reach MLflow itself (it is not on the models one)."""
        return f"{self.stack.name}_{REGISTRY_NET}"

    @property
    def server_image(self) -> str:
        return image_for(self.stack.images, "fastapi")


@dataclass
class StartReport:
    """What deploy (Swarm) or up (Compose) did."""

    prepared: Prepared
    created_secrets: list[str] = field(default_factory=list)
    revealed: list[Path] = field(default_factory=list)  # private files with generated logins
    routes: list[RouteCheck] = field(default_factory=list)
    pruned_configs: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class StopReport:
    """What rm (Swarm) or down (Compose) removed, and the data it kept."""

    removed_volumes: list[str] = field(default_factory=list)
    removed_secrets: list[str] = field(default_factory=list)
    kept_volumes: list[str] = field(default_factory=list)
    kept_secrets: list[str] = field(default_factory=list)
    removed_secrets_dir: Path | None = None  # Compose: the folder of secret files
    remaining: list[str] = field(default_factory=list)  # what could not be removed, and where


class StartSteps(Protocol):
    """The steps of :func:`start` that differ by target."""

    @property
    def target(self) -> Target: ...

    @property
    def state_dir(self) -> Path | None: ...

    def check_engine(self, stack: Stack, stack_file: Path) -> None: ...

    def live(self, stack: Stack) -> LiveState: ...

    def push_flags(self, offline: bool) -> str: ...

    def cluster_ipvs(self, prepared: Prepared, options: StartOptions,
                     progress: Progress) -> bool | None: ...

    def ensure_secrets(self, prepared: Prepared, report: StartReport,
                       progress: Progress) -> None: ...

    def start_registry(self, prepared: Prepared, services: Sequence[str], since: datetime,
                       options: StartOptions, progress: Progress) -> None: ...

    def start_models(self, prepared: Prepared, since: datetime, options: StartOptions,
                     progress: Progress) -> None: ...

    def route_host(self, options: StartOptions) -> str: ...

    def tidy(self, prepared: Prepared) -> list[str]: ...


def start(steps: StartSteps, engine: Engine, stack: Stack, stack_file: Path,
          options: StartOptions, progress: Progress) -> StartReport:
    """Start ``stack`` on ``steps``' target and verify every route: the list above."""
    started = datetime.now(UTC)
    steps.check_engine(stack, stack_file)
    verdicts = check_registry_images(
        engine, steps.live(stack), with_images(stack, offline=options.offline),
        stack_file=str(stack_file), acknowledged=options.upgrade_registry, progress=progress)
    stop_first = rolls_stop_first(verdicts)
    for service in sorted(stop_first):
        progress(f"{service}: rolls stop-first this time: the running release must not "
                 "write to what the new one migrates")
    prepared = prepare(stack, steps.target, offline=options.offline, state_dir=steps.state_dir,
                       ipvs=options.ipvs, stop_first=stop_first)
    if stack.image_registry is not None:
        prepared = publish_images(engine, prepared, progress)
    else:
        require_local_images(engine, prepared, offline=options.offline)
    ipvs = steps.cluster_ipvs(prepared, options, progress)
    if ipvs is not None and ipvs != prepared.ipvs:
        prepared = rerender(replace(prepared, ipvs=ipvs))
    report = StartReport(prepared)
    steps.ensure_secrets(prepared, report, progress)
    wanted = registry_services(prepared)
    progress(f"starting the registry of {stack.name}: {', '.join(wanted)}")
    steps.start_registry(prepared, wanted, started, options, progress)
    serving, known = require_models(engine, prepared, stack_file,
                                    steps.push_flags(options.offline),
                                    progress if options.undo_interrupted else None,
                                    requirements_for=requirement_uris(stack))
    registry = RegistryClient(engine, RegistryTarget(stack.name, prepared.registry_network,
                                                     prepared.server_image))
    serving = with_model_images(engine, stack, registry, serving, progress, known)
    prepared = pin(prepared, serving)
    report.prepared = prepared
    steps.start_models(prepared, started, options, progress)
    report.routes = check_routes(prepared.stack, steps.route_host(options), progress=progress)
    report.pruned_configs = steps.tidy(prepared)
    report.seconds = (datetime.now(UTC) - started).total_seconds()
    return report


# --- render ---------------------------------------------------------------------


def state_directory(stack: Stack, target: Target, override: Path | None = None) -> Path:
    """Where a stack's rendered files (and Compose secrets) live between commands."""
    if override is not None:
        return override
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "swarmai" / f"{stack.name}-{target}"


def with_images(stack: Stack, *, offline: bool) -> Stack:
    """``stack`` with swarmai's own image tags (and with ``offline``, local builds of the
    third-party ones) filled in wherever the stack's ``images:`` does not say otherwise."""
    from swarmai.images import image_tags

    images = {**image_tags(offline=offline), **stack.images}
    return stack.model_copy(update={"images": FrozenDict(images)})


def prepare(
    stack: Stack, target: Target, *, offline: bool, state_dir: Path | None = None,
    ipvs: bool | None = None, stop_first: frozenset[str] = frozenset(),
) -> Prepared:
    """Render ``stack`` for ``target`` into its state directory."""
    stack = with_images(stack, offline=offline)
    ipvs = resolve_ipvs(stack, ipvs)
    bundle = render_bundle(stack, target, ipvs=ipvs, stop_first=stop_first)
    directory = state_directory(stack, target, state_dir)
    write_bundle(bundle, directory)
    return Prepared(stack, target, bundle, directory, ipvs, stop_first)


def rerender(prepared: Prepared) -> Prepared:
    """``prepared`` rendered again from its stack and IPVS setting, and written."""
    bundle = render_bundle(prepared.stack, prepared.target, ipvs=prepared.ipvs,
                           stop_first=prepared.stop_first)
    write_bundle(bundle, prepared.directory)
    return replace(prepared, bundle=bundle)


def pin(prepared: Prepared, serving: Serving) -> Prepared:
    """Re-render with the versions the registry resolved (and its canaries), and write it."""
    bundle = render_bundle(prepared.stack, prepared.target, ipvs=prepared.ipvs, serving=serving,
                           stop_first=prepared.stop_first)
    write_bundle(bundle, prepared.directory)
    return replace(prepared, bundle=bundle)


def require_local_images(engine: Engine, prepared: Prepared, *, offline: bool) -> None:
    """Fail early, with the command to run, when images swarmai builds are not built yet."""
    from swarmai.images import image_tags

    ours = set(image_tags(offline=offline).values())
    wanted = sorted(ref for ref in _images_in_bundle(prepared) if ref in ours)
    missing = docker.missing_images(engine, wanted)
    if missing:
        flag = " --offline" if offline else ""
        raise OperationError(
            f"image(s) {', '.join(missing)} are not built on this engine yet; "
            f"run `swarmai images build{flag}` first (seconds when nothing changed)")


def stack_images(stack: Stack, target: Target, *, offline: bool) -> dict[str, str]:
    """Spec key -> reference of each image ``stack`` runs on ``target``, and the server
    image, in which swarmai's registry checks run even when no model uses it."""
    stack = with_images(stack, offline=offline)
    bundle = render_bundle(stack, target, ipvs=False)
    document = yaml.safe_load(bundle.files[bundle.main])
    used = {service["image"] for service in document["services"].values() if "image" in service}
    return _keys_of(stack, used | {image_for(stack.images, "fastapi")})


def _keys_of(stack: Stack, used: set[str]) -> dict[str, str]:
    """Spec key -> reference for each image of ``used`` (defaults included)."""
    every = {key: image_for(stack.images, key) for key in DEFAULT_IMAGES}
    return {key: ref for key, ref in every.items() if ref in used}


def publish_images(engine: Engine, prepared: Prepared, progress: Progress) -> Prepared:
    """Step 3 with a registry: push the images the stack uses, re-render pinned by digest.

    The server image is also pulled here: the registry checks run in it, on this node.
    """
    stack = prepared.stack
    assert stack.image_registry is not None
    images = _keys_of(stack, _images_in_bundle(prepared) | {prepared.server_image})
    published = publish(engine, stack.image_registry, images, progress)
    stack = stack.model_copy(update={"images": FrozenDict(
        {**stack.images, **{p.key: p.remote for p in published}})})
    docker.pull_image(engine, image_for(stack.images, "fastapi"))
    return rerender(replace(prepared, stack=stack))


def _images_in_bundle(prepared: Prepared) -> set[str]:
    """The images the rendered services use (no TorchServe model: no TorchServe image)."""
    document = yaml.safe_load(prepared.bundle.files[prepared.bundle.main])
    return {service["image"] for service in document["services"].values() if "image" in service}


def registry_only_file(prepared: Prepared) -> Path:
    """A copy of the main file with only the registry services.

    Their definitions are identical to the full file's, so deploying the full
    file afterwards does not restart them.
    """
    document = yaml.safe_load(prepared.bundle.files[prepared.bundle.main])
    document["services"] = {
        name: service for name, service in document["services"].items()
        if name in _REGISTRY_SERVICES
    }
    path = prepared.directory / f"registry-{prepared.bundle.main}"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def registry_services(prepared: Prepared) -> list[str]:
    names = yaml.safe_load(prepared.bundle.files[prepared.bundle.main])["services"]
    return [name for name in names if name in _REGISTRY_SERVICES]


# --- the models in the registry -----------------------------------------------------


def registry_target(stack: Stack, *, offline: bool) -> RegistryTarget:
    """Where ``stack``'s MLflow is reached from, with the server image deploy would use."""
    image = image_for(with_images(stack, offline=offline).images, "fastapi")
    if stack.image_registry is not None:
        # On a cluster the CLI's node pulls it from there (by tag: no digest is at hand).
        image = in_registry(stack.image_registry, image)
    return RegistryTarget(stack.name, f"{stack.name}_{REGISTRY_NET}", image)


def require_models(engine: Engine, prepared: Prepared, stack_file: Path, push_flags: str,
                   undo_interrupted: Progress | None = None, *,
                   requirements_for: Sequence[str] = (),
                   ) -> tuple[Serving, tuple[ModelRequirements, ...]]:
    """What each model's URI resolves to now, and the requirements of the versions those
    in ``requirements_for`` resolved to; raise, naming each missing model and the push
    that fixes it, unless all resolve.  With ``undo_interrupted``, unfinished promotions
    are undone first, and said so there."""
    target = RegistryTarget(prepared.stack.name, prepared.registry_network, prepared.server_image)
    uris = registry_uris(prepared.stack)
    if not uris:  # apps that load no registry model: nothing to ask MLflow
        return Serving(), ()
    registry = RegistryClient(engine, target)
    results = registry.check(uris, requirements_for=requirements_for)
    missing = missing_models_message(prepared.stack, results, stack_file, push_flags)
    if missing:
        raise OperationError(missing)
    if undo_interrupted is not None:
        results = interrupted.undo_interrupted(registry, prepared.stack, stack_file, results,
                                               undo_interrupted)
    known = tuple(r for result in results for r in result.requirements)
    return serving_from(prepared.stack, results), known


def registry_uris(stack: Stack) -> list[str]:
    """The registry model URIs ``stack`` serves, each once (an app may serve none)."""
    return list(dict.fromkeys(m.model for m in stack.models if m.model is not None))


def missing_models_message(stack: Stack, results: Sequence[CheckResult], stack_file: Path,
                           push_flags: str = "") -> str | None:
    """None when every model resolves; else what is missing and the commands to fix it.

    ``push_flags`` are the options the push must repeat (``-t compose``, ``--offline``).
    """
    missing = [r for r in results if not r.found]
    if not missing:
        return None
    lines = [f"{len(missing)} model(s) of stack {stack.name} are not in its registry yet:"]
    for result in missing:
        uri = modeluri.parse(result.uri)
        lines.append(f"  {result.uri}: MLflow says: {result.error}")
        if uri.version is None:
            lines.append(f"    swarmai models push {stack_file} {uri.name} PATH --alias "
                         f"{uri.alias}" + (f" {push_flags}" if push_flags else ""))
        else:
            lines.append(f"    (version {uri.version} must exist: push the model, then point "
                         f"the stack at the version it gets, or use an alias)")
    lines.append("PATH: an MLflow model directory, a TensorFlow SavedModel directory (tfserving), "
                 "a TorchScript file (torchserve), or a pickled scikit-learn model or callable.")
    lines.append("Then run the same deploy again.")
    return "\n".join(lines)


def serving_from(stack: Stack, results: Sequence[CheckResult]) -> Serving:
    """FastAPI models (and apps with a model) pinned to the versions their aliases
    resolved to, and their canaries."""
    by_uri = {r.uri: r for r in results if r.found}
    pinned: dict[str, str] = {}
    canaries: dict[str, str] = {}
    for model in stack.models:
        found = by_uri.get(model.model or "")
        if not model.pinned_by_deploy or found is None:
            continue
        pinned[model.name] = str(found.version)
        if found.canary is not None:
            canaries[model.name] = str(found.canary)
    return Serving(pinned=pinned, canaries=canaries)


# --- the gateway's dynamic configuration ----------------------------------------------


def write_gateway_file(engine: Engine, stack: Stack, name: str, text: str | None, *,
                       image: str) -> None:
    """Write (``None``: remove) ``name`` in the gateway's dynamic-config volume on this node."""
    volume = f"{stack.name}_{DYNAMIC_VOLUME}"
    if not docker.volume_exists(engine, volume):
        raise OperationError(f"volume {volume} (the gateway's dynamic configuration) is not on "
                             "this node: run the command on the node that runs the gateway")
    docker.write_volume_file(engine, volume, name, text, image=image)
