"""Build swarmai's images in the engine, skipping every one whose tag is already there.

Tags are content hashes (see :mod:`swarmai.images.catalog`), so "the tag exists"
means "this exact image was built before": a repeated build with nothing
changed only asks the engine a few questions.  What does need building goes
through BuildKit, whose layer and pip caches make a rebuild after a small
change cheap too.
"""

from __future__ import annotations

import os
import ssl
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from swarmai import engine as docker
from swarmai.engine import Engine
from swarmai.errors import OperationError
from swarmai.images import base, catalog, source
from swarmai.images.catalog import ImageDef

# Where a host keeps the CA bundle pip must trust (a TLS-inspecting proxy's CA
# lives there too); the first that exists is handed to the build as a secret.
_CA_ENV = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
_CA_FILES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")
# The host folder holding wheels PyPI has no usable build of (the CPU torch
# wheel for TorchServe); handed to the builds that need it as context ``wheels``.
WHEELS_ENV = "SWARMAI_WHEELS"
DEFAULT_WHEELS = "/opt/wheels"


@dataclass(frozen=True)
class BuildResult:
    """What ``build_images`` did for one image.

    ``key`` is the spec image key (``fastapi``, ``postgres``...) or, for the
    base image, ``base``; ``built`` is False when the tag was already present.
    """

    key: str
    tag: str
    built: bool
    seconds: float


def _quiet(_: str) -> None:
    """The default progress callback: say nothing."""


def build_images(
    engine: Engine,
    *,
    offline: bool,
    progress: Callable[[str], None] = _quiet,
    only: Sequence[str] = (),
) -> list[BuildResult]:
    """Make sure every image is present in the engine, building the missing ones.

    Without ``offline``: swarmai's own images (server, model-sync, engine-proxy), which nobody
    publishes.  With it: also local stand-ins for traefik, seaweedfs, mlflow and
    postgres.  ``only`` narrows this to some images (spec keys or image names);
    the images they are built FROM always come along.  ``progress`` gets one
    line at a time: a status line per image, and indented build output.
    """
    images = catalog.plan(offline=offline, only=only)
    sources = source.source_files()
    tags = catalog.compute_tags(images, sources)
    missing = {i.name for i in images if not docker.image_exists(engine, tags[i.name])}
    # Before building anything: a missing wheel would fail the build minutes in.
    _require_wheels([image for image in images if image.name in missing], tags)
    results = []
    for number, image in enumerate(images, start=1):
        started = time.monotonic()
        tag = tags[image.name]
        built = image.name in missing
        if built:
            progress(f"[{number}/{len(images)}] {tag}: building")
            _build(engine, image, tags, sources, progress)
        else:
            progress(f"[{number}/{len(images)}] {tag}: present")
        if image.own:
            # Also swarmai/NAME:VERSION, the spec's default names for swarmai's own images.
            docker.tag_image(engine, tag, f"{image.repository}:{image.version}")
        seconds = time.monotonic() - started
        if built:
            progress(f"[{number}/{len(images)}] {tag}: built in {seconds:.0f} s")
        results.append(BuildResult(image.key or image.name, tag, built, seconds))
    return results


def _build(
    engine: Engine, image: ImageDef, tags: Mapping[str, str],
    sources: Mapping[str, bytes], progress: Callable[[str], None],
) -> None:
    """Build one image from a fresh temporary context (the package's may be read-only)."""
    if image.name == "base":
        base.build(engine, tags["base"], progress)
        return
    with tempfile.TemporaryDirectory(prefix=f"swarmai-{image.name}-") as tmp:
        context = Path(tmp)
        for relative, data in catalog.context_files(image).items():
            path = context / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        if image.with_source:
            source.stage(context, sources)
        _buildx(engine, image, context, tags, progress)


def _buildx(
    engine: Engine, image: ImageDef, context: Path, tags: Mapping[str, str],
    progress: Callable[[str], None],
) -> None:
    """Build one catalog image from its staged ``context``."""
    build_context(
        engine, context, tag=tags[image.name],
        build_args=catalog.build_args(image, tags),
        labels={"swarmai.image": image.name, "org.opencontainers.image.version": image.version},
        build_contexts={"wheels": wheel_folder()} if image.host_wheels else None,
        dockerfile=catalog.context_dir(image.name) / "Dockerfile",
        progress=progress,
    )


def build_context(
    engine: Engine,
    context: Path,
    *,
    tag: str,
    build_args: Mapping[str, str],
    labels: Mapping[str, str],
    dockerfile: Path,
    build_contexts: Mapping[str, Path] | None = None,
    progress: Callable[[str], None] = _quiet,
) -> None:
    """``docker buildx build`` of a context directory, plain output streamed to ``progress``.

    The host's CA bundle goes in as the secret ``ca`` (see the Dockerfiles) and
    the result is loaded into the engine as ``tag``.  On failure the error
    carries the command and the build's last lines, which is where BuildKit
    prints the failing step and its output; ``dockerfile`` names the recipe.
    """
    ca = _ca_bundle()
    docker.build_image(
        engine, context, tag=tag, build_args=build_args, labels=labels,
        build_contexts=build_contexts, secrets=[f"id=ca,src={ca}"] if ca else [],
        progress=lambda line: progress(f"    {line}"),
        what=f"building {tag} (Dockerfile: {dockerfile})",
    )


def wheel_folder() -> Path:
    """Where this host keeps the wheels some images need (``$SWARMAI_WHEELS``, /opt/wheels)."""
    return Path(os.environ.get(WHEELS_ENV) or DEFAULT_WHEELS)


def _require_wheels(images: Sequence[ImageDef], tags: Mapping[str, str]) -> None:
    """Fail, naming the files, when an image to build needs wheels this host lacks."""
    folder = wheel_folder()
    for image in images:
        missing = [name for name in image.host_wheels if not (folder / name).is_file()]
        if missing:
            raise OperationError(
                f"building {tags[image.name]} needs {', '.join(missing)} in {folder}, and "
                f"{'it is' if len(missing) == 1 else 'they are'} not there: put the file(s) "
                f"there, or set {WHEELS_ENV} to the folder that holds them.  PyPI's own torch "
                "is a multi-GB CUDA build, so it is never installed instead; the CPU wheel "
                "is at https://download.pytorch.org/whl/cpu (or leave this image out: "
                "`swarmai images build --only KEY ...`)"
            )


def _ca_bundle() -> str | None:
    """The host's CA bundle file, if it has one; pip inside the build trusts it."""
    candidates = [os.environ.get(name, "") for name in _CA_ENV]
    candidates += [*_CA_FILES, ssl.get_default_verify_paths().openssl_cafile]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    return None
