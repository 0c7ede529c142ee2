"""Build the TF Serving stand-in image (TEST ONLY) with swarmai's own image builder.

The tag is content-addressed like swarmai's images (swarmai.images.catalog):
``swarmai/tfserving-standin:<tensorflow version>-<12 hex>`` over this folder's
image files, the pinned TensorFlow and the base image's tag, so a build is
skipped when the image is present and redone when anything it is made of changes.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from swarmai import engine as docker
from swarmai.engine import Engine
from swarmai.images import build_images
from swarmai.images.build import build_context
from swarmai.images.catalog import BY_NAME, compute_tags, digest

HERE = Path(__file__).resolve().parent
REPOSITORY = "swarmai/tfserving-standin"
TENSORFLOW_CPU_VERSION = "2.21.0"
FILES = ("Dockerfile", "standin.py", "make_model.py")


def _quiet(_: str) -> None:
    pass


def base_tag() -> str:
    return compute_tags([BY_NAME["base"]])["base"]


def standin_tag() -> str:
    inputs = {f"context/{name}": (HERE / name).read_bytes() for name in FILES}
    inputs["pin/TENSORFLOW_CPU_VERSION"] = TENSORFLOW_CPU_VERSION.encode()
    inputs["parent"] = base_tag().encode()
    return f"{REPOSITORY}:{TENSORFLOW_CPU_VERSION}-{digest(inputs)[:12]}"


def ensure_standin(engine: Engine, progress: Callable[[str], None] = _quiet) -> str:
    """The stand-in's tag, built first (with swarmai's base image) when missing."""
    tag = standin_tag()
    if docker.image_exists(engine, tag):
        return tag
    build_images(engine, offline=False, only=["base"], progress=progress)
    with tempfile.TemporaryDirectory(prefix="swarmai-tfserving-standin-") as tmp:
        context = Path(tmp)
        for name in FILES:
            shutil.copyfile(HERE / name, context / name)
        build_context(
            engine, context, tag=tag,
            build_args={"BASE": base_tag(), "TENSORFLOW_CPU_VERSION": TENSORFLOW_CPU_VERSION},
            labels={"swarmai.image": "tfserving-standin",
                    "org.opencontainers.image.version": TENSORFLOW_CPU_VERSION},
            dockerfile=HERE / "Dockerfile",
            progress=progress,
        )
    return tag
