"""A model's own server image: swarmai's server plus what the model recorded it needs.

MLflow logs ``requirements.txt`` with every model, pinned to the environment
the model was logged in.  The requirements the server image does not already
satisfy (by its own lock, a pure lookup) are installed into a layer on top of
it.  The image's tag is a hash of the server image's tag and those lines, so
two versions that need the same packages share one image, a deploy that needs
nothing new builds nothing, and "the tag exists" means "this exact image was
built".  The build reaches PyPI (and the host's wheel folder, for the CPU
torch wheel), never a container registry.

A model whose requirements the server image already meets is served by the
server image itself: no build at all.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from swarmai import __version__
from swarmai import engine as docker
from swarmai.engine import Engine
from swarmai.errors import OperationError
from swarmai.images import catalog
from swarmai.images.build import build_context, wheel_folder

REPOSITORY = f"{catalog.REPOSITORY}/model-server"
# The server image's own MLflow loads every model: a model's pin of mlflow
# (or of its skinny twin) names the MLflow that logged it, which the server's
# reads too, and replacing it would change the server under the model.
SERVER_PROVIDES = frozenset({"mlflow", "mlflow-skinny"})
# OpenMP, which LightGBM's and other wheels load from the system (they do not
# bundle it); small, and installed once per parent image (BuildKit's cache).
_SYSTEM_PACKAGES = "libgomp1"
# Where the server image runs (Debian bookworm's CPython 3.11), whatever the
# host's platform: environment markers are judged for it.
_IMAGE_PLATFORM = {"os_name": "posix", "sys_platform": "linux", "platform_system": "Linux",
                   "platform_machine": "x86_64", "python_version": "3.11",
                   "implementation_name": "cpython",
                   "platform_python_implementation": "CPython"}
DOCKERFILE = f"""\
# A model's server image (swarmai.images.model_images): swarmai's server plus the
# requirements the model recorded in MLflow that the server does not already meet.
ARG SERVER
FROM ${{SERVER}}
USER root
RUN apt-get update && apt-get install -y --no-install-recommends {_SYSTEM_PACKAGES} \\
    && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
# The host's CA bundle is a build secret, seen by this step only; the host's
# wheel folder (the CPU torch wheel PyPI does not have) is a read-only context.
RUN --mount=type=secret,id=ca --mount=type=cache,id=swarmai-pip,target=/root/.cache/pip \\
    --mount=type=bind,source=requirements.txt,target=/tmp/requirements.txt \\
    --mount=type=bind,from=wheels,target=/tmp/wheels \\
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \\
    /opt/swarmai/bin/pip install --disable-pip-version-check --find-links /tmp/wheels \\
        -r /tmp/requirements.txt \\
    && /opt/swarmai/bin/pip check \\
    && /opt/swarmai/bin/python -c "import swarmai.incontainer.server"
USER swarmai
"""


@dataclass(frozen=True)
class ModelImage:
    """The image a model version is served by, and what it adds to the server image."""

    tag: str
    extras: tuple[str, ...]  # empty: the server image itself
    built: bool = False
    seconds: float = 0.0


def extra_requirements(lines: Sequence[str], provided: Mapping[str, str],
                       where: str) -> tuple[str, ...]:
    """The requirement lines the server image does not meet, normalised and sorted.

    ``provided`` is the server's lock (canonical name -> version).  A line pip
    would read as an option (``-c``, ``--index-url``...) is refused: it would
    reach beyond PyPI and the host's wheels, and swarmai could not hash what it
    pulls in.  ``where`` names the model version in errors.
    """
    extras: set[str] = set()
    for line in lines:
        text = line.split(" #")[0].strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("-"):
            raise OperationError(f"{where}: requirements.txt line {line!r} is a pip option; "
                                 "swarmai installs only requirement lines (log the model with "
                                 "plain pip_requirements, e.g. 'lightgbm==4.6.0')")
        try:
            requirement = Requirement(text)
        except InvalidRequirement as error:
            raise OperationError(f"{where}: requirements.txt line {line!r} is not a "
                                 f"requirement: {error}") from None
        # One spelling per package, so equal sets hash (and tag) alike.
        requirement.name = canonicalize_name(requirement.name)
        if requirement.name in SERVER_PROVIDES or _met(requirement, provided.get(requirement.name)):
            continue
        extras.add(str(requirement))
    return tuple(sorted(extras))


def _met(requirement: Requirement, version: str | None) -> bool:
    """Whether the server's ``version`` of the package (None: it has none) will do."""
    if requirement.marker is not None and not requirement.marker.evaluate(_IMAGE_PLATFORM):
        return True  # not for the image's platform: nothing to add
    if version is None or requirement.extras or requirement.url:
        return False
    return requirement.specifier.contains(version, prereleases=True)


def server_packages() -> dict[str, str]:
    """What the server image has installed: its lock, canonical name -> version."""
    return {canonicalize_name(name): version
            for name, version in catalog.locked_packages(catalog.BY_NAME["server"]).items()}


def model_image(server_image: str, extras: Sequence[str]) -> ModelImage:
    """The image for a model needing ``extras`` on top of ``server_image``: pure."""
    if not extras:
        return ModelImage(server_image, ())
    inputs = {"server": server_image.encode(), "dockerfile": DOCKERFILE.encode(),
              "requirements": "\n".join(extras).encode()}
    return ModelImage(f"{REPOSITORY}:{__version__}-{catalog.digest(inputs)[:12]}",
                      tuple(extras))


def ensure_built(engine: Engine, server_image: str, image: ModelImage,
                 progress: Callable[[str], None]) -> ModelImage:
    """``image`` present in the engine, built on ``server_image`` when it is not."""
    if not image.extras or docker.image_exists(engine, image.tag):
        return image
    started = time.monotonic()
    progress(f"building {image.tag} for {', '.join(image.extras)}")
    with tempfile.TemporaryDirectory(prefix="swarmai-model-image-") as tmp:
        context = Path(tmp)
        (context / "Dockerfile").write_text(DOCKERFILE, "utf-8")
        (context / "requirements.txt").write_text("\n".join(image.extras) + "\n", "utf-8")
        wheels = wheel_folder()
        if not wheels.is_dir():  # a host without a wheel folder: PyPI only
            wheels = context / "no-wheels"
            wheels.mkdir()
        build_context(
            engine, context, tag=image.tag, build_args={"SERVER": server_image},
            labels={"swarmai.image": "model-server",
                    "swarmai.requirements": " ".join(image.extras),
                    "org.opencontainers.image.version": __version__},
            build_contexts={"wheels": wheels}, dockerfile=context / "Dockerfile",
            progress=progress,
        )
    seconds = time.monotonic() - started
    progress(f"built {image.tag} in {seconds:.0f} s")
    return ModelImage(image.tag, image.extras, built=True, seconds=seconds)
