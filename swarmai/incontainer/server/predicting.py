"""The prediction endpoint: admit, read, parse, predict, answer; shed at each step.

Every way a request can fail has its own status and a JSON ``{"error": ...}``:

- 400: the body is not a scoring payload (malformed JSON, nesting too deep,
  a number too long, a shape we cannot batch).
- 408: the body did not arrive within the prediction timeout.
- 413: the body is over the limit (answered by :class:`asgi.BodyLimit`).
- 415: the Content-Type is not JSON.
- 422: the model rejected the input (ValueError, TypeError, KeyError, or
  MLflow's INVALID_PARAMETER_VALUE): its reason, in one line.
- 503: the model is not loaded, the queue is full (with ``Retry-After``), or
  the server is shutting down.
- 504: the model did not answer within the prediction timeout.
- 500: a server fault, the only kind logged with a traceback.

Parsing and serialising are CPU work on request-sized data, so large bodies
and outputs go to worker threads: on the event loop one of them would stall
``/healthz`` past Docker's healthcheck timeout.  Small ones (the usual
prediction) are handled on the loop, where they take microseconds, less than
the hand-off to a thread and back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import anyio.to_thread
import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from swarmai.incontainer.server.batching import Batcher, Overloaded, ShuttingDown
from swarmai.incontainer.server.config import Settings
from swarmai.incontainer.server.messages import public_reason
from swarmai.incontainer.server.metrics import Metrics
from swarmai.incontainer.server.outputs import to_jsonable
from swarmai.incontainer.server.payload import (
    ModelInput,
    PayloadError,
    parse_body,
    unsupported_media_type,
)
from swarmai.incontainer.server.state import ModelHolder

log = logging.getLogger(__name__)

RETRY_AFTER = {"Retry-After": "1"}
# MLflow marks input/schema errors with these codes; they are the client's fault.
_CLIENT_ERROR_CODES = frozenset({"INVALID_PARAMETER_VALUE", "BAD_REQUEST"})
# What a model raises when the input does not fit it: wrong columns or
# feature count (ValueError, KeyError), text where numbers go (ValueError,
# TypeError).  A bug in the model raises them too, but cannot be told apart.
_REJECTIONS = (ValueError, TypeError, KeyError)
# Parsing holds the GIL, so parallel parses gain nothing; two at a time keeps
# the memory of parsed-but-unqueued bodies bounded.
_PARALLEL_PARSES = 2
# Below these a parse or a render costs less than a thread hop (tens of µs).
_INLINE_BODY_BYTES = 16 * 1024
_INLINE_ROWS = 64
_MODEL_REASON_CHARS = 1000


class Predictions:
    """``POST /v1/predict`` (and ``/invocations``) for one model."""

    def __init__(
        self, settings: Settings, holder: ModelHolder, batcher: Batcher, metrics: Metrics
    ) -> None:
        self._holder = holder
        self._batcher = batcher
        self._metrics = metrics
        self._max_queue = settings.max_queue
        self._timeout_s = settings.predict_timeout_s
        self._parse_limiter = anyio.CapacityLimiter(_PARALLEL_PARSES)
        self.in_flight = 0  # admitted and not answered yet; only the event loop writes it

    async def endpoint(self, request: Request) -> Response:
        """The route handler: refuse what cannot be served before reading the body."""
        unsupported = unsupported_media_type(request.headers.get("content-type"))
        if unsupported is not None:
            return self._rejected("content_type", 415, unsupported)
        reason = self._holder.not_serving_reason()
        if reason is not None:
            return error_response(503, reason)
        if self.in_flight >= self._max_queue:
            return self._shed(f"server is busy: {self.in_flight} predictions in progress")
        self._admit(1)
        try:
            return await self._answer(request)
        finally:
            self._admit(-1)

    async def _answer(self, request: Request) -> Response:
        # One deadline from admission to answer, for a slow upload as well as
        # a slow model: either one holds a slot of the queue.
        deadline = asyncio.get_running_loop().time() + self._timeout_s
        try:
            async with asyncio.timeout_at(deadline):
                body = await request.body()
        except TimeoutError:
            return self._rejected("slow_body", 408, "request body not received in time")
        except ClientDisconnect:
            return error_response(400, "client disconnected before sending the whole body")
        try:
            if len(body) <= _INLINE_BODY_BYTES:
                item = parse_body(body)
            else:
                item = await anyio.to_thread.run_sync(
                    parse_body, body, limiter=self._parse_limiter
                )
        except PayloadError as error:
            return self._rejected("malformed", 400, str(error))
        return await self._predict(item, deadline)

    async def _predict(self, item: ModelInput, deadline: float) -> Response:
        timeout = asyncio.timeout_at(deadline)
        try:
            async with timeout:
                output = await self._batcher.submit(item)
        except Exception as error:
            if isinstance(error, TimeoutError) and timeout.expired():
                self._metrics.timed_out.inc()
                message = f"the model did not answer within {self._timeout_s:g} s"
                return error_response(504, message)
            return self._failed(error)
        try:
            if item.rows <= _INLINE_ROWS:
                body = render_predictions(output)
            else:
                body = await anyio.to_thread.run_sync(render_predictions, output)
        except Exception:
            log.exception("the model's output could not be serialised")
            return error_response(500, "the model's output could not be serialised")
        return Response(body, media_type="application/json")

    def _failed(self, error: Exception) -> Response:
        if isinstance(error, Overloaded):
            return self._shed(f"server is busy: {error}")
        if isinstance(error, ShuttingDown):
            return error_response(503, str(error))
        if rejects_input(error):
            reason = public_reason(error, _MODEL_REASON_CHARS)
            message = f"the model rejected the input: {type(error).__name__}: {reason}"
            log.info("%s", message)  # the client's mistake: no traceback
            return self._rejected("model_rejected", 422, message)
        log.error("prediction failed", exc_info=error)
        return error_response(
            500, f"prediction failed: {type(error).__name__}: {public_reason(error)}"
        )

    def _admit(self, change: int) -> None:
        self.in_flight += change
        self._metrics.in_flight.set(self.in_flight)

    def _shed(self, message: str) -> Response:
        self._metrics.shed.inc()
        return error_response(503, f"{message}; retry later", headers=RETRY_AFTER)

    def _rejected(self, reason: str, status: int, message: str) -> Response:
        self._metrics.rejected.labels(reason).inc()
        return error_response(status, message)


def rejects_input(error: BaseException) -> bool:
    """Whether a model's exception means "this input does not fit me"."""
    code = getattr(error, "error_code", None)
    return isinstance(error, _REJECTIONS) or code in _CLIENT_ERROR_CODES


def render_predictions(output: Any) -> bytes:
    """The response body for a model's output; runs in a worker thread."""
    # to_jsonable turned NaN and infinities into null, as orjson would too.
    return orjson.dumps({"predictions": to_jsonable(output)})


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The JSON body every error of this server has."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)
