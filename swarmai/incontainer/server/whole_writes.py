"""Send each HTTP response in one write, so that a crash cannot cut it in two.

uvicorn writes a response's status line and headers, then its body, in two
transport writes.  A replica killed between the two (SIGKILL, the kernel's OOM
killer) leaves the gateway holding a 200 with no body.  Go's reverse proxy can
then only abort the client's connection, and the gateway's retry never runs,
because a status was already passed on.  A replica killed before its first
write fails the request with no answer at all, which Traefik turns into a 502
and retries on another replica (gateway/middlewares.yml).

So the writes made in one turn of the event loop are joined and handed to the
socket together at the end of that turn.  uvicorn makes the header write and
the body write of a plain response in the same turn (nothing between them
awaits), so a response is either wholly in the kernel or not there at all.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class JoinedWrites(asyncio.Transport):
    """A transport that holds writes until the end of the loop's turn."""

    def __init__(self, transport: asyncio.Transport,
                 loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def flush(self) -> None:
        """Hand what this turn wrote to the socket, in one write."""
        if self._pending and not self._transport.is_closing():
            self._transport.write(b"".join(self._pending))
        self._pending.clear()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    # Everything else is the socket transport's own.
    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))


class WholeResponses(HttpToolsProtocol):
    """uvicorn's httptools protocol over :class:`JoinedWrites`; ``uvicorn.Config(http=...)``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(JoinedWrites(transport, asyncio.get_running_loop()))
