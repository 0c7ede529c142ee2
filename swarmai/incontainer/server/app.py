"""The HTTP surface: probes, model info, predictions and metrics.

``ModelServer`` wires the pieces (model holder, batcher, metrics) and builds the
FastAPI app.  Endpoints:

- ``GET /healthz``: the process is alive (200 always).
- ``GET /readyz``: 200 once the model is loaded; 503 with the reason while
  loading, after a failed load (MLflow's message) and while draining.
- ``GET /v1/models``: which model and version this replica serves.
- ``POST /v1/predict`` (and MLflow's ``/invocations``): MLflow scoring payloads.
- ``GET /metrics``: Prometheus text format.

Every response carries ``X-Model-Name`` and ``X-Model-Version`` so a client
behind the gateway can tell which replica's model answered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from swarmai.incontainer.server.batching import Batcher
from swarmai.incontainer.server.config import Settings
from swarmai.incontainer.server.loader import LoadedModel, ModelLoader, parse_model_uri
from swarmai.incontainer.server.metrics import Metrics
from swarmai.incontainer.server.outputs import to_jsonable
from swarmai.incontainer.server.payload import PayloadError, parse_body
from swarmai.incontainer.server.state import ModelHolder

log = logging.getLogger(__name__)

PREDICT_PATHS = frozenset({"/v1/predict", "/invocations"})
NAME_HEADER = "X-Model-Name"
VERSION_HEADER = "X-Model-Version"
UNKNOWN_VERSION = "unknown"
# MLflow marks input/schema errors with this code; they are the client's fault.
_CLIENT_ERROR_CODES = frozenset({"INVALID_PARAMETER_VALUE", "BAD_REQUEST"})


class ModelServer:
    """One model behind one FastAPI app; ``app`` is what uvicorn runs."""

    def __init__(
        self, settings: Settings, loader: ModelLoader, *, max_retry_delay_s: float = 30.0
    ) -> None:
        self.settings = settings
        self.model_name = settings.model_name or parse_model_uri(settings.model_uri).name
        self.metrics = Metrics()
        self.holder = ModelHolder(
            loader, max_retry_delay_s=max_retry_delay_s, on_loaded=self._on_loaded
        )
        self.batcher = Batcher(
            self._predict,
            max_batch_size=settings.max_batch_size,
            max_delay_s=settings.max_delay_ms / 1000.0,
            on_batch=self.metrics.batch_rows.observe,
        )
        self.app = self._build_app()

    @property
    def version(self) -> str:
        loaded = self.holder.loaded
        return loaded.version if loaded is not None else UNKNOWN_VERSION

    def begin_drain(self) -> None:
        """Called on SIGTERM: fail readiness; predictions are still answered."""
        log.info("draining: readiness fails from now on; still answering predictions")
        self.holder.begin_drain()

    def _on_loaded(self, loaded: LoadedModel) -> None:
        self.metrics.model_loaded.set(1)
        self.metrics.model_info.labels(loaded.registered_name, loaded.version).set(1)

    def _predict(self, data: Any, params: dict[str, Any] | None) -> Any:
        """Runs in the batcher's thread, once the model is loaded."""
        loaded = self.holder.loaded
        if loaded is None:  # only reachable if a request raced a reload; be explicit
            raise RuntimeError("model is not loaded")
        if params is None:
            return loaded.model.predict(data)
        predict: Any = loaded.model.predict  # pyfunc models take params=; the protocol need not
        return predict(data, params=params)

    @asynccontextmanager
    async def _lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        self.batcher.start()
        self.holder.start()
        try:
            yield
        finally:
            # uvicorn calls this after in-flight requests finished (or the
            # drain timeout passed), so nothing useful is left in the queue.
            self.holder.stop()
            await self.batcher.stop()

    def _build_app(self) -> FastAPI:
        app = FastAPI(title=f"swarmai model server: {self.model_name}", lifespan=self._lifespan)
        app.middleware("http")(self._headers_and_metrics)
        app.get("/healthz")(self._healthz)
        app.get("/readyz")(self._readyz)
        app.get("/v1/models")(self._models)
        app.get("/metrics")(self._metrics)
        for path in sorted(PREDICT_PATHS):
            app.post(path)(self._predict_endpoint)
        return app

    async def _headers_and_metrics(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        response.headers[NAME_HEADER] = self.model_name
        response.headers[VERSION_HEADER] = self.version
        if request.url.path in PREDICT_PATHS:
            self.metrics.requests.labels(str(response.status_code)).inc()
            self.metrics.latency.observe(time.perf_counter() - started)
        return response

    async def _healthz(self) -> dict[str, bool]:
        return {"alive": True}

    async def _readyz(self) -> JSONResponse:
        reason = self.holder.not_ready_reason()
        if reason is None:
            return JSONResponse({"ready": True})
        return JSONResponse({"ready": False, "error": reason}, status_code=503)

    async def _models(self) -> dict[str, Any]:
        loaded = self.holder.loaded
        return {
            "name": self.model_name,
            "registered_name": loaded.registered_name if loaded else None,
            "version": loaded.version if loaded else None,
            "uri": self.settings.model_uri,
            "ready": self.holder.not_ready_reason() is None,
        }

    async def _metrics(self) -> Response:
        return Response(self.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def _predict_endpoint(self, request: Request) -> JSONResponse:
        reason = self.holder.not_serving_reason()
        if reason is not None:
            return _error(503, reason)
        try:
            item = parse_body(await request.body())
        except PayloadError as error:
            return _error(400, str(error))
        try:
            output = await self.batcher.submit(item)
        except Exception as error:
            status = 400 if getattr(error, "error_code", None) in _CLIENT_ERROR_CODES else 500
            return _error(status, f"prediction failed: {error or type(error).__name__}")
        return JSONResponse({"predictions": to_jsonable(output)})


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
