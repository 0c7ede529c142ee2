"""Log streams: a Swarm service's (across its nodes, from the manager) and a container's.

Both are read with timestamps, so the caller can merge many streams in time
order; a service's lines also carry the engine's details (``--details``:
``com.docker.swarm.task.id=...,com.docker.swarm.node.id=...``), which say
which replica on which node wrote each one.  Every line comes back as text
without its newline, its engine prefix left for the caller to parse:

    container:  2026-12-02T05:34:05.741470090Z <text>
    service:    2026-12-02T05:34:05.741470090Z <key=value,key=value,...> <text>
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from docker.errors import DockerException as ApiError
from docker.errors import NotFound
from requests.exceptions import RequestException

from swarmai.engine.core import Engine
from swarmai.errors import OperationError


def service_log_lines(engine: Engine, service: str, *, follow: bool, tail: int | None,
                      since: float | None) -> Iterator[str]:
    """``docker service logs --details --timestamps SERVICE``, every task on every node
    (the manager gathers them), old tasks included; ``tail`` lines per task."""
    with _stream_errors(f"reading the logs of service {service}"):
        frames = engine.api.service_logs(
            service, details=True, follow=follow, stdout=True, stderr=True, timestamps=True,
            tail="all" if tail is None else tail,
            since=f"{since:.6f}" if since else None)
        yield from join_frames(frames, prefix_fields=2)


def container_log_lines(engine: Engine, container: str, *, follow: bool, tail: int | None,
                        since: float | None) -> Iterator[str]:
    """``docker logs --timestamps CONTAINER``; nothing when the container is gone already
    (removed between the listing and this call: its logs went with it)."""
    with _stream_errors(f"reading the logs of container {container[:12]}"):
        try:
            frames = engine.api.logs(container, stream=True, follow=follow, stdout=True,
                                     stderr=True, timestamps=True,
                                     tail="all" if tail is None else tail,
                                     since=since or None)
        except NotFound:
            return
        yield from join_frames(frames, prefix_fields=1)


def join_frames(frames: Iterable[bytes], *, prefix_fields: int) -> Iterator[str]:
    """One line per log message, from docker-py's demultiplexed frames.

    Without a TTY (swarmai never asks for one) the engine sends one frame
    per message, each with its own prefix (timestamp, details); a message over
    16 KiB comes as several frames, each prefixed again.  A frame that does
    not end a line is kept, and the next one's prefix (``prefix_fields``
    space-separated fields) dropped, so the long line comes back whole.
    Bytes are joined before decoding: a split may fall inside a character.
    """
    pending = b""
    for frame in frames:
        if pending:
            frame = frame.split(b" ", prefix_fields)[-1]
        pending += frame
        if pending.endswith(b"\n"):
            yield pending[:-1].decode("utf-8", "replace").removesuffix("\r")
            pending = b""
    if pending:
        yield pending.decode("utf-8", "replace")


@contextlib.contextmanager
def _stream_errors(what: str) -> Iterator[None]:
    """An API refusal, or a connection lost mid-stream (the engine restarted): an
    OperationError that says whose logs could not be read."""
    try:
        yield
    except (ApiError, RequestException, OSError) as error:
        raise OperationError(f"{what} failed: {error}") from None
