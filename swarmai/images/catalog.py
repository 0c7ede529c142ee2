"""Which images swarmai builds, what they are built from, and their content-addressed tags.

Nothing here talks to Docker: a tag is a pure function of the files an image is
built from, so ``render``/``deploy --offline`` can name the images a later (or
earlier) ``swarmai images build`` produces, and a build can tell from the tag
alone that an image is already present and skip it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from swarmai import __version__
from swarmai.errors import UsageError
from swarmai.images import source

CONTEXTS = Path(__file__).resolve().parent / "contexts"
REPOSITORY = "swarmai"

# How the base root file system is made (see swarmai.images.base).  Bump
# RECIPE when the way the rootfs is cleaned or imported changes.
BASE_RECIPE: Mapping[str, str] = {
    "SUITE": "bookworm",
    "VARIANT": "minbase",
    "INCLUDE": "python3,python3-venv,ca-certificates",
    "RECIPE": "1",
}

# Packages the server image installs beyond swarmai[server]: what unpickling a
# scikit-learn model logged to MLflow needs.  Pinned, so the tag says it all.
SERVER_EXTRAS: tuple[str, ...] = ("scikit-learn==1.9.1", "cloudpickle==3.1.2")

# The CPU build of torch, from the host's wheel folder (see build.wheel_folder):
# ``pip install torch`` from PyPI is a multi-GB CUDA build.
TORCH_CPU_WHEEL = "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"


@dataclass(frozen=True)
class ImageDef:
    """One image: its name, the spec key it stands in for, and what it is built from."""

    name: str
    version: str
    key: str | None = None
    parent: str | None = None
    parent_arg: str = "BASE"
    pins: Mapping[str, str] = field(default_factory=dict)
    shared: tuple[str, ...] = ()
    own: bool = False  # swarmai's own image: nobody publishes it, so always built
    with_source: bool = False  # built from swarmai's source (copied into its context)
    # Files the build takes from the host's wheel folder, handed to it as the
    # build context ``wheels``; their names are pinned (``pins``), so they count
    # in the tag.  A missing one fails the build: there is no fallback.
    host_wheels: tuple[str, ...] = ()

    @property
    def repository(self) -> str:
        return f"{REPOSITORY}/{self.name}"


# In build order: every image comes after the one it is built FROM.
CATALOG: tuple[ImageDef, ...] = (
    ImageDef("base", BASE_RECIPE["SUITE"], pins=BASE_RECIPE),
    ImageDef("traefik", "3.7.15", key="traefik", parent="base",
             pins={"TRAEFIK_VERSION": "3.7.15"}, shared=("entrypoint.sh",)),
    ImageDef("seaweedfs", "4.48", key="seaweedfs", parent="base",
             pins={"SEAWEEDFS_VERSION": "4.48"}, shared=("entrypoint.sh",)),
    # mlflow 3.18.0 is on PyPI but cannot be installed: it requires
    # mlflow-skinny==3.18.0 and mlflow-tracing==3.18.0, which are not.
    ImageDef("mlflow", "3.17.2", key="mlflow", parent="base",
             pins={"MLFLOW_VERSION": "3.17.2", "BOTO3_VERSION": "1.44.5",
                   "PSYCOPG2_VERSION": "2.9.13", "PSYCOPG_VERSION": "3.3.9"}),
    ImageDef("postgres", "15", key="postgres", parent="base", pins={"POSTGRES_MAJOR": "15"}),
    ImageDef("torchserve", "0.12.0", key="torchserve", parent="base",
             pins={"TORCHSERVE_VERSION": "0.12.0", "TORCH_MODEL_ARCHIVER_VERSION": "0.12.0",
                   "TORCH_WHEEL": TORCH_CPU_WHEEL, "NUMPY_VERSION": "2.4.6",
                   "PYYAML_VERSION": "6.0.3"},
             host_wheels=(TORCH_CPU_WHEEL,)),
    ImageDef("server", __version__, key="fastapi", parent="base",
             pins={"SERVER_EXTRAS": " ".join(SERVER_EXTRAS)}, own=True, with_source=True),
    ImageDef("model-sync", __version__, key="model-sync", parent="server", parent_arg="SERVER",
             pins={"TORCH_MODEL_ARCHIVER_VERSION": "0.12.0"}, own=True),
)
BY_NAME: Mapping[str, ImageDef] = {image.name: image for image in CATALOG}


def context_files(image: ImageDef) -> dict[str, bytes]:
    """The image's own build-context files (Dockerfile and friends), by relative path."""
    files = _tree(CONTEXTS / image.name)
    for name in image.shared:
        files[name] = (CONTEXTS / "shared" / name).read_bytes()
    return files


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
