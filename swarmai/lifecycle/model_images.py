"""The server image each FastAPI model version runs: deploy's and promotion's step.

After the registry answered which version each model serves (steps.require_models),
each version's recorded requirements decide its image
(:mod:`swarmai.images.model_images`): the server image when it already meets
them, else a layer built on it here, once per set of requirements, and pushed
to ``images.registry`` when the stack has one so that every node runs it.
Promotion calls :func:`model_image_of` before its pre-flight, so a version
with new requirements is built (and shown to load) before anything rolls.

A stack that names its own ``images.fastapi`` keeps it for every model: that
image is the user's, and swarmai cannot know what it holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from swarmai import engine as docker
from swarmai import modeluri
from swarmai.engine import Engine
from swarmai.errors import OperationError
from swarmai.images import image_tags
from swarmai.images.model_images import (
    ModelImage,
    ensure_built,
    extra_requirements,
    model_image,
    server_packages,
)
from swarmai.images.publish import in_registry, publish
from swarmai.registry_client import ModelRegistry, ModelRequirements
from swarmai.render import Serving
from swarmai.spec import Stack

Progress = Callable[[str], None]


def requirement_uris(stack: Stack) -> list[str]:
    """The model URIs whose versions' requirements decide an image (FastAPI models, unless
    the stack names its own ``images.fastapi``): what the registry check reads them for."""
    if "fastapi" in stack.images:
        return []
    return list(dict.fromkeys(m.model for m in stack.models
                              if m.runtime == "fastapi" and m.model is not None))


def served_versions(stack: Stack, serving: Serving) -> list[str]:
    """The ``models:/NAME/VERSION`` URIs the stack's FastAPI servers and canaries run."""
    uris: list[str] = []
    for model in stack.models:
        if model.runtime != "fastapi" or model.model is None:
            continue
        uri = modeluri.parse(model.model)
        versions = [serving.pinned.get(model.name) or
                    (None if uri.version is None else str(uri.version)),
                    serving.canaries.get(model.name)]
        uris += [modeluri.version_uri(uri.name, v) for v in versions if v is not None]
    return list(dict.fromkeys(uris))


def plan_images(stack: Stack, found: Sequence[ModelRequirements]) -> dict[str, ModelImage]:
    """Each version's image, by version URI: pure (tags only, nothing is built)."""
    if "fastapi" in stack.images:
        return {}
    server = _own_server_image()
    provided = server_packages()
    return {r.uri: model_image(server, extra_requirements(r.lines, provided, r.uri))
            for r in found}


def planned_model_images(stack: Stack, found: Sequence[ModelRequirements]) -> dict[str, str]:
    """The model images a deploy would run, by version URI, named as ``swarmai plan``
    compares them (by tag; in the stack's registry, without the digest): pure."""
    registry = stack.image_registry
    return {uri: in_registry(registry, image.tag) if registry else image.tag
            for uri, image in plan_images(stack, found).items() if image.extras}


def with_model_images(engine: Engine, stack: Stack, registry: ModelRegistry, serving: Serving,
                      progress: Progress, known: Sequence[ModelRequirements] = ()) -> Serving:
    """``serving`` with the image of every served version that needs more than the server.
    ``known``: requirements the registry check already read (the rest are asked for)."""
    images: dict[str, str] = {}
    if "fastapi" not in stack.images:
        found = requirements_of(registry, served_versions(stack, serving), known)
        for uri, image in plan_images(stack, found).items():
            if image.extras:
                images[uri] = _available(engine, stack, image, progress)
    return replace(serving, images=images)


def requirements_of(registry: ModelRegistry, uris: Sequence[str],
                    known: Sequence[ModelRequirements]) -> list[ModelRequirements]:
    """Each version URI's requirements, in order: from ``known`` where it holds them (a
    check read them: no second container), the others from ``registry``."""
    by_uri = {r.uri: r for r in known}
    missing = [uri for uri in uris if uri not in by_uri]
    by_uri.update((r.uri, r) for r in registry.requirements(missing))
    return [by_uri[uri] for uri in uris]


def model_image_of(engine: Engine, stack: Stack, registry: ModelRegistry, uri: str,
                   progress: Progress) -> str | None:
    """The image version ``uri`` runs in, built (and pushed) if need be; None: the server's."""
    if "fastapi" in stack.images:
        return None
    (image,) = plan_images(stack, registry.requirements([uri])).values()
    return _available(engine, stack, image, progress) if image.extras else None


def _available(engine: Engine, stack: Stack, image: ModelImage, progress: Progress) -> str:
    """``image`` built on this engine, and in the stack's registry if it has one; its name
    as the services refer to it."""
    server = _own_server_image()
    registry = stack.image_registry
    if not docker.image_exists(engine, server):
        remote = in_registry(registry, server) if registry else None
        if remote is None or not docker.ensure_image(engine, remote):
            raise OperationError(f"{image.tag} is built on {server}, which is not on this "
                                 "engine: run `swarmai images build` first")
        docker.tag_image(engine, remote, server)
    built = ensure_built(engine, server, image, progress)
    if registry is None:
        return built.tag
    (published,) = publish(engine, registry, {"model-server": built.tag}, progress)
    return published.remote


def _own_server_image() -> str:
    """swarmai's server image by its content tag (the same wherever it was built)."""
    return image_tags(offline=False)["fastapi"]
