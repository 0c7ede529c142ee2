"""Images: present or not, tags, the base root file system, BuildKit builds."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from python_on_whales.exceptions import DockerException

from swarmai.engine.core import (
    Engine,
    engine_errors,
)
from swarmai.errors import OperationError

# --- images ---------------------------------------------------------------------


def image_exists(engine: Engine, reference: str) -> bool:
    """Whether ``reference`` (a tag or id) is in this engine's image store."""
    with engine_errors(f"looking for image {reference}"):
        return bool(engine.cli.image.exists(reference))


def tag_image(engine: Engine, source: str, target: str) -> None:
    """``docker tag SOURCE TARGET``."""
    with engine_errors(f"tagging {source} as {target}"):
        engine.cli.image.tag(source, target)


def import_rootfs(engine: Engine, tarball: Path, tag: str, changes: Sequence[str]) -> None:
    """``docker import``: a root file system tarball becomes image ``tag``.

    ``changes`` are Dockerfile instructions (ENV, LABEL, CMD...) applied to it.
    """
    with engine_errors(f"importing the base image {tag}"):
        engine.cli.image.import_(tarball, tag=tag, changes=list(changes))


def build_image(
    engine: Engine,
    context: Path,
    *,
    tag: str,
    build_args: Mapping[str, str],
    labels: Mapping[str, str],
    build_contexts: Mapping[str, Path] | None = None,
    secrets: Sequence[str] = (),
    progress: Callable[[str], None],
    what: str,
) -> None:
    """``docker buildx build --load`` of ``context`` as ``tag``, plain output to ``progress``.

    ``secrets`` are ``id=...,src=...`` specifications.  On failure the error
    carries the command and the build's failing step (see
    :func:`buildkit_failure_lines`); its message is ``what`` failed.
    """
    tail: deque[str] = deque(maxlen=60)
    try:
        stream = engine.cli.buildx.build(
            context,
            build_args=dict(build_args),
            build_contexts={name: str(path) for name, path in (build_contexts or {}).items()},
            tags=[tag],
            labels=dict(labels),
            secrets=list(secrets),
            load=True,
            progress="plain",
            stream_logs=True,
        )
        assert isinstance(stream, Iterator)  # stream_logs=True: the output, line by line
        for chunk in stream:
            for line in chunk.splitlines():
                tail.append(line)
                progress(line)
    except DockerException as error:
        raise OperationError(
            f"{what} failed",
            command=[str(part) for part in error.docker_command],
            return_code=error.return_code,
            stderr="\n".join(buildkit_failure_lines(list(tail))),
        ) from None


def buildkit_failure_lines(tail: Sequence[str]) -> list[str]:
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


# --- an image registry ------------------------------------------------------------


def names_a_registry(reference: str) -> bool:
    """Whether ``reference`` starts with a registry host (Docker's rule: a first
    component with a dot or a port, or ``localhost``)."""
    first, slash, _rest = reference.partition("/")
    return bool(slash) and ("." in first or ":" in first or first == "localhost")


def registry_digest(engine: Engine, reference: str) -> str | None:
    """The manifest digest ``reference`` has in its registry; None when it is not there.

    The engine asks the registry (its TLS trust, the CLI's login), so nothing
    is pulled.  Any other failure (no login, an untrusted certificate, no
    answer) raises, with the engine's words.
    """
    from docker.errors import APIError, NotFound

    try:
        found = engine.api.inspect_distribution(reference)
    except NotFound:
        return None
    except APIError as error:
        text = str(error.explanation or error)
        if "manifest unknown" in text or "not found" in text.lower():
            return None
        raise OperationError(
            f"asking the registry for {reference} failed: {text}\n"
            "Check that the registry answers, that this engine trusts its certificate "
            "(/etc/docker/certs.d/HOST:PORT/ca.crt) and that you ran `docker login HOST:PORT`."
        ) from None
    return str(found["Descriptor"]["digest"])


def push_image(engine: Engine, local: str, remote: str) -> None:
    """Tag ``local`` as ``remote`` and push it with the CLI's login."""
    tag_image(engine, local, remote)
    with engine_errors(f"pushing {local} as {remote}"):
        engine.cli.image.push(remote, quiet=True)


def ensure_image(engine: Engine, reference: str) -> bool:
    """Whether ``reference`` is on this engine, pulled first when it names a registry."""
    if image_exists(engine, reference):
        return True
    if names_a_registry(reference):
        pull_image(engine, reference)
        return True
    return False


def pull_image(engine: Engine, reference: str) -> None:
    """Pull ``reference`` unless this engine has it already."""
    if image_exists(engine, reference):
        return
    with engine_errors(f"pulling {reference}"):
        engine.cli.image.pull(reference, quiet=True)
