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
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from swarmai.engine import engine_errors
from swarmai.errors import OperationError
from swarmai.images import base, catalog, source
from swarmai.images.catalog import ImageDef

# Where a host keeps the CA bundle pip must trust (a TLS-inspecting proxy's CA
# lives there too); the first that exists is handed to the build as a secret.
_CA_ENV = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
_CA_FILES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


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
    docker: DockerClient,
    *,
    offline: bool,
    progress: Callable[[str], None] = _quiet,
    only: Sequence[str] = (),
) -> list[BuildResult]:
    """Make sure every image is present in the engine, building the missing ones.

    Without ``offline``: swarmai's own images (server, model-sync), which nobody
    publishes.  With it: also local stand-ins for traefik, seaweedfs, mlflow and
    postgres.  ``only`` narrows this to some images (spec keys or image names);
    the images they are built FROM always come along.  ``progress`` gets one
    line at a time: a status line per image, and indented build output.
    """
    images = catalog.plan(offline=offline, only=only)
    sources = source.source_files()
    tags = catalog.compute_tags(images, sources)
    results = []
    for number, image in enumerate(images, start=1):
        started = time.monotonic()
        tag = tags[image.name]
        built = not _present(docker, tag)
        if built:
            progress(f"[{number}/{len(images)}] {tag}: building")
            _build(docker, image, tags, sources, progress)
        else:
            progress(f"[{number}/{len(images)}] {tag}: present")
        if image.own:
            _alias(docker, image, tag)
        seconds = time.monotonic() - started
        if built:
            progress(f"[{number}/{len(images)}] {tag}: built in {seconds:.0f} s")
        results.append(BuildResult(image.key or image.name, tag, built, seconds))
    return results


def _build(
    docker: DockerClient, image: ImageDef, tags: Mapping[str, str],
    sources: Mapping[str, bytes], progress: Callable[[str], None],
) -> None:
    """Build one image from a fresh temporary context (the package's may be read-only)."""
    if image.name == "base":
        base.build(docker, tags["base"], progress)
        return
    with tempfile.TemporaryDirectory(prefix=f"swarmai-{image.name}-") as tmp:
        context = Path(tmp)
        for relative, data in catalog.context_files(image).items():
            path = context / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        if image.with_source:
            source.stage(context, sources)
        _buildx(docker, image, context, tags, progress)


def _buildx(
    docker: DockerClient, image: ImageDef, context: Path, tags: Mapping[str, str],
    progress: Callable[[str], None],
) -> None:
    """``docker buildx build`` with plain output streamed to ``progress``.

    On failure the error carries the command and the build's last lines, which
    is where BuildKit prints the failing step and its output.
    """
    tag = tags[image.name]
    tail: deque[str] = deque(maxlen=60)
    ca = _ca_bundle()
    try:
        stream = docker.buildx.build(
            context,
            build_args=catalog.build_args(image, tags),
            tags=[tag],
            labels={"swarmai.image": image.name, "org.opencontainers.image.version":
                    image.version},
            secrets=[f"id=ca,src={ca}"] if ca else [],
            load=True,
            progress="plain",
            stream_logs=True,
        )
        assert isinstance(stream, Iterator)  # stream_logs=True: the output, line by line
        for chunk in stream:
            for line in chunk.splitlines():
                tail.append(line)
                progress(f"    {line}")
    except DockerException as error:
        raise OperationError(
            f"building {tag} failed (Dockerfile: {catalog.CONTEXTS / image.name / 'Dockerfile'})",
            command=[str(part) for part in error.docker_command],
            return_code=error.return_code,
            stderr="\n".join(_failure_lines(tail)),
        ) from None


def _failure_lines(tail: Sequence[str]) -> list[str]:
    """The build output worth showing: from the failing step's log block on.

    BuildKit ends a failed build with the failing step's last output between
    ``------`` rules, a Dockerfile excerpt and the ``ERROR:`` line; the excerpt
    is dropped so the step's own output fits in the error.
    """
    lines = list(tail)
    starts = [i for i, line in enumerate(lines) if line.strip() == "------"]
    if len(starts) >= 2:
        block = lines[starts[0]: starts[1] + 1]
        errors = [line for line in lines[starts[1]:] if line.startswith("ERROR")]
        return block + errors
    return lines


def _present(docker: DockerClient, tag: str) -> bool:
    with engine_errors(f"looking for image {tag}"):
        return bool(docker.image.exists(tag))


def _alias(docker: DockerClient, image: ImageDef, tag: str) -> None:
    """Also tag swarmai's own images ``swarmai/NAME:VERSION``, the spec's default names."""
    alias = f"{image.repository}:{image.version}"
    with engine_errors(f"tagging {tag} as {alias}"):
        docker.image.tag(tag, alias)


def _ca_bundle() -> str | None:
    """The host's CA bundle file, if it has one; pip inside the build trusts it."""
    candidates = [os.environ.get(name, "") for name in _CA_ENV]
    candidates += [*_CA_FILES, ssl.get_default_verify_paths().openssl_cafile]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    return None
