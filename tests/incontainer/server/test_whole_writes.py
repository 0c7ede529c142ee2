"""A response leaves the server in one write (whole_writes.py says why): the
protocol is driven with real bytes over a transport that records its writes."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from swarmai.incontainer.server.whole_writes import WholeResponses

REQUEST = b"POST /v1/predict HTTP/1.1\r\nHost: model\r\nContent-Length: 2\r\n\r\n{}"
BODY = b'{"predictions": [1]}'


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(BODY)).encode())]})
    await send({"type": "http.response.body", "body": BODY})


class _Recording(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


def _writes(protocol_class: type[HttpToolsProtocol]) -> list[bytes]:
    async def exchange() -> list[bytes]:
        config = uvicorn.Config(_app, log_level="warning")
        config.load()
        protocol = protocol_class(config=config, server_state=ServerState(),
                                  app_state={}, _loop=asyncio.get_running_loop())
        transport = _Recording()
        protocol.connection_made(transport)
        protocol.data_received(REQUEST)
        for _ in range(20):
            await asyncio.sleep(0.01)
        return transport.writes
    return asyncio.run(exchange())


def test_headers_and_body_leave_in_one_write() -> None:
    writes = _writes(WholeResponses)
    assert len(writes) == 1, writes
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b"\r\n\r\n" + BODY)


def test_plain_uvicorn_writes_twice() -> None:
    """What the joined writes are for: a kill between these two cuts the response."""
    writes = [data for data in _writes(HttpToolsProtocol) if data]
    assert len(writes) == 2, writes
    assert writes[1] == BODY
