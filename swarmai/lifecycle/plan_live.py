"""What `swarmai plan` reads: the live state of each target, and the desired state a
deploy would render now.

Nothing here writes: the desired bundle is rendered in memory (the same steps as
deploy's render and pin, without the state directory), the registry is asked
from a one-off container as deploy asks it, and Compose's secret files are
listed, never read.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from swarmai import engine as docker
from swarmai.engine import Engine, names_a_registry
from swarmai.images.publish import in_registry
from swarmai.lifecycle.ipvs import resolve_ipvs
from swarmai.lifecycle.model_images import (
    planned_model_images,
    requirement_uris,
    requirements_of,
    served_versions,
)
from swarmai.lifecycle.plan import Plan, diff, model_lines, running_versions
from swarmai.lifecycle.plan_shapes import (
    LiveState,
    ServiceShape,
    compose_service,
    desired_state,
    image_defaults,
    swarm_service,
)
from swarmai.lifecycle.steps import (
    registry_target,
    registry_uris,
    serving_from,
    stack_images,
    with_images,
)
from swarmai.registry_client import CheckResult, RegistryClient
from swarmai.render import Bundle, Serving, render_bundle
from swarmai.render.compose import SECRETS_DIR
from swarmai.render.naming import MLFLOW, REGISTRY_NET, content_hash
from swarmai.spec import Stack, Target
from swarmai.spec.fields import FrozenDict

_HASH = re.compile(r"^[0-9a-f]{12}$")
_SERVICE_LABEL = "com.docker.compose.service"
_NUMBER_LABEL = "com.docker.compose.container-number"
_ONEOFF_LABEL = "com.docker.compose.oneoff"


def make_plan(engine: Engine, stack: Stack, target: Target, live: LiveState, *,
              offline: bool, ipvs: bool | None = None) -> Plan:
    """What a deploy (``target`` swarm) or up (compose) of ``stack`` would do to ``live``.

    Model aliases are resolved in the stack's MLflow when it runs; when it does
    not, the servers are compared at the versions they run, and the models say
    so (registry unknown).
    """
    planned = planned_stack(stack, target, offline=offline)
    results: list[CheckResult] | None = None
    if f"{stack.name}_{REGISTRY_NET}" in live.networks and MLFLOW in live.services:
        client = RegistryClient(engine, registry_target(stack, offline=offline))
        results = client.check(registry_uris(stack), requirements_for=requirement_uris(
            stack)) if registry_uris(stack) else []
        serving = serving_from(planned, results)
        known = [r for result in results for r in result.requirements]
        serving = replace(serving, images=planned_model_images(
            stack, requirements_of(client, served_versions(stack, serving), known)))
    else:
        pinned, canaries = running_versions(planned, live)
        serving = Serving(pinned=pinned, canaries=canaries)
    bundle = render_desired(planned, target, ipvs=resolve_ipvs(planned, ipvs), serving=serving)
    document = yaml.safe_load(bundle.files[bundle.main])
    desired = desired_state(document, bundle.files, target, stack.name)
    return Plan(stack.name, target, tuple(diff(desired, live, target)),
                tuple(model_lines(stack, results, live)))


def planned_stack(stack: Stack, target: Target, *, offline: bool) -> Stack:
    """``stack`` with the image references a deploy renders (with ``images.registry``:
    the registry's names, by tag; deploy adds the digest it pushed, which the live
    side's is compared without)."""
    planned = with_images(stack, offline=offline)
    registry = stack.image_registry
    if registry is None:
        return planned
    remote = {key: in_registry(registry, ref)
              for key, ref in stack_images(stack, target, offline=offline).items()
              if not names_a_registry(ref) or ref.startswith(f"{registry}/")}
    return planned.model_copy(update={"images": FrozenDict({**planned.images, **remote})})


def render_desired(stack: Stack, target: Target, *, ipvs: bool, serving: Serving) -> Bundle:
    """The bundle deploy would write after pinning, rendered in memory only."""
    return render_bundle(stack, target, ipvs=ipvs, serving=serving)


# --- Swarm -----------------------------------------------------------------------------


def swarm_live(engine: Engine, stack: Stack) -> LiveState:
    """The stack's services, configs, networks and volumes on the swarm, and the swarm's
    secret names.

    Volumes are this node's, plus those a live service mounts: on a cluster a
    volume lives on the node its task runs on, and a deploy creates none of them.
    """
    name = stack.name
    services = docker.stack_services(engine, name)
    shapes = {str(s["Spec"]["Name"]).removeprefix(f"{name}_"): swarm_service(s)
              for s in services}
    mounted = {str(m.get("Source")) for s in services
               for m in (s["Spec"].get("TaskTemplate", {}).get("ContainerSpec", {})
                         .get("Mounts") or []) if m.get("Type") == "volume"}
    configs: dict[str, set[str]] = {}
    for config in docker.stack_configs(engine, name):
        key, _, digest = config.removeprefix(f"{name}_").rpartition("_")
        if key and _HASH.match(digest):
            configs.setdefault(key, set()).add(digest)
    return LiveState(
        services=shapes,
        configs={key: frozenset(found) for key, found in configs.items()},
        secrets=frozenset(docker.secret_names(engine)),
        networks=frozenset(docker.stack_networks(engine, name)),
        volumes=frozenset(docker.stack_volumes(engine, name)) | mounted,
    )


# --- Compose ---------------------------------------------------------------------------


def compose_live(engine: Engine, stack: Stack, directory: Path) -> LiveState:
    """The project's containers, networks and volumes on this engine; its configs and
    secrets are files in ``directory`` (the state directory) as the last `up` left them."""
    project = stack.name
    groups: dict[str, list[dict[str, Any]]] = {}
    for container in docker.project_containers(engine, project):
        labels = container.get("Labels") or {}
        if labels.get(_ONEOFF_LABEL) == "True":
            continue
        groups.setdefault(str(labels.get(_SERVICE_LABEL, "?")), []).append(container)
    keys, by_path = _config_files(directory) if groups else ({}, {})
    shapes: dict[str, ServiceShape] = {}
    inherited = {}
    for service, containers in groups.items():
        newest = max(containers, key=_container_number)
        details = docker.inspect_container(engine, str(newest["Id"]))
        image = docker.inspect_image(engine, str(details.get("Image", "")))
        shapes[service] = compose_service(
            details, len(containers), image,
            lambda source, _target: by_path.get(str(Path(source).resolve())))
        inherited[service] = image_defaults(image)
    label = f"{docker.COMPOSE_PROJECT_LABEL}={project}"
    secrets = directory / SECRETS_DIR
    return LiveState(
        services=shapes,
        configs={key: frozenset({digest}) for key, digest in keys.items()},
        # Names only: a secret file is never opened here.
        secrets=frozenset(p.name for p in secrets.iterdir() if p.is_file())
        if secrets.is_dir() else frozenset(),
        networks=frozenset(docker.networks_labelled(engine, label)),
        volumes=frozenset(docker.volumes_labelled(engine, label)),
        inherited=inherited,
    )


def _config_files(directory: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The configs of the Compose file last written to ``directory``: key -> content hash,
    and absolute path -> content hash."""
    compose_file = directory / "compose.yml"
    if not compose_file.is_file():
        return {}, {}
    document = yaml.safe_load(compose_file.read_text(encoding="utf-8")) or {}
    keys, by_path = {}, {}
    for key, config in (document.get("configs") or {}).items():
        path = directory / str(config.get("file", "")).removeprefix("./")
        if path.is_file():
            digest = content_hash(path.read_text(encoding="utf-8"))
            keys[str(key)] = digest
            by_path[str(path.resolve())] = digest
    return keys, by_path


def _container_number(container: dict[str, Any]) -> int:
    try:
        return int((container.get("Labels") or {}).get(_NUMBER_LABEL, 0))
    except ValueError:
        return 0
