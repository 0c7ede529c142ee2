"""Pure ASGI middleware: the request-body limit, model headers plus metrics, and
the predictions' shortcut past the framework.

Pure ASGI rather than Starlette's ``BaseHTTPMiddleware``: that one runs the
endpoint in a task of its own and copies the response through a stream, which
costs time on every request and muddles cancellation.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# (path, status, seconds) of every finished HTTP response.
ResponseHook = Callable[[str, str, int, float], None]  # method, path, status, seconds


class _BodyTooLarge(Exception):
    """Raised from ``receive`` once a streamed body passes the limit."""


class BodyLimit:
    """Answer 413 to bodies over ``max_bytes``, without buffering them.

    A declared Content-Length is checked before the app runs; a chunked body
    is counted as it streams, and the app's read fails the moment the count
    passes the limit, so memory never holds more than the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, on_reject: Callable[[], None]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self._on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except _BodyTooLarge:
            if started:  # cannot change a response already on its way
                raise
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        self._on_reject()
        message = f"request body is larger than the limit of {self.max_bytes} bytes"
        await send_json(send, 413, {"error": message})


class ModelHeaders:
    """Add the model's name and version to every response; report each one.

    ``headers`` is called per response (the version changes once the model
    loads); ``on_response`` gets what the metrics need.
    """

    def __init__(
        self,
        app: ASGIApp,
        headers: Callable[[], dict[str, str]],
        on_response: ResponseHook,
    ) -> None:
        self.app = app
        self._headers = headers
        self._on_response = on_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # An exception escaping the app becomes uvicorn's 500.
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                for name, value in self._headers().items():
                    headers[name] = value
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            self._on_response(scope["method"], scope["path"], status,
                              time.perf_counter() - started)


Endpoint = Callable[[Request], Awaitable[Response]]


class Shortcut:
    """Send the hot routes straight to their endpoint; the rest to ``app``.

    A prediction is the one request a server answers thousands of times a
    second, and Starlette's router and its two exception middlewares cost
    about a fifth of it (a profile under load).  Only exact paths and methods
    take the shortcut, and an exception escaping the endpoint is answered with
    a 500 and logged here, as Starlette's ServerErrorMiddleware would.
    """

    def __init__(self, app: ASGIApp, routes: dict[tuple[str, str], Endpoint]) -> None:
        self.app = app
        self._routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = None
        if scope["type"] == "http":
            endpoint = self._routes.get((scope["method"], scope["path"]))
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        started = False

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            response = await endpoint(Request(scope, receive))
            await response(scope, receive, watching_send)
        except _BodyTooLarge:
            raise  # BodyLimit's to answer
        except Exception:
            log.exception("unhandled error answering %s %s", scope["method"], scope["path"])
            if started:  # cannot change a response already on its way
                raise
            await send_json(send, 500, {"error": "internal server error"})


async def send_json(send: Send, status: int, content: object) -> None:
    """Send a whole JSON response from middleware, below any framework."""
    body = json.dumps(content, separators=(",", ":")).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP server refuses it before we ever see it
    return None
