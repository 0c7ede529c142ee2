"""Images through the stack's registry: every node runs byte-identical images.

On a cluster an image built on one node exists only there.  With
``images.registry`` in the stack, deploy pushes each image the stack uses to
that registry (unless it is there already: tags are content hashes, so a tag
present is the same content) and renders it pinned by the digest the registry
reports, so a node can only ever run exactly what was pushed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from swarmai import engine as docker
from swarmai.engine import Engine, names_a_registry
from swarmai.errors import OperationError


@dataclass(frozen=True)
class PublishedImage:
    key: str  # the spec's image key (fastapi, traefik, ...)
    local: str  # the reference as built or configured
    remote: str  # in the stack's registry, pinned: REGISTRY/REPO:TAG@sha256:...
    pushed: bool  # this run pushed it (False: the registry had it already)


def in_registry(registry: str, reference: str) -> str:
    """``reference`` (REPO:TAG, or already in ``registry``) as a name in ``registry``."""
    if reference.startswith(f"{registry}/"):
        return reference.split("@")[0]
    return f"{registry}/{reference.split('@')[0]}"


def publish(engine: Engine, registry: str, images: Mapping[str, str],
            progress: Callable[[str], None]) -> list[PublishedImage]:
    """Make every image of ``images`` (spec key -> reference) available in ``registry``.

    An image of another registry is the user's to manage and is left alone;
    the others are pushed from this engine when the registry lacks them.
    """
    published = []
    for key, local in images.items():
        if names_a_registry(local) and not local.startswith(f"{registry}/"):
            continue
        remote = in_registry(registry, local)
        digest = docker.registry_digest(engine, remote)
        pushed = False
        if digest is None:
            if not docker.image_exists(engine, local):
                raise OperationError(
                    f"image {local} ({key}) is neither in registry {registry} nor on this "
                    "engine: build it with `swarmai images build` (add --offline for "
                    "third-party images) on a machine whose engine can push to the registry, "
                    "then `swarmai images push STACK` there")
            progress(f"pushing {local} to {registry}")
            docker.push_image(engine, local, remote)
            digest = docker.registry_digest(engine, remote)
            if digest is None:
                raise OperationError(f"registry {registry} does not list {remote} right after "
                                     "it was pushed")
            pushed = True
        published.append(PublishedImage(key, local, f"{remote}@{digest}", pushed))
    return published
