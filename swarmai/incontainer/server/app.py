"""The HTTP surface: probes, model info, predictions and metrics.

``ModelServer`` wires the pieces (model holder, batcher, metrics) and builds the
ASGI app: plain Starlette, or FastAPI when the docs are asked for (FastAPI's
per-request work buys nothing else here).  Endpoints:

- ``GET /healthz``: the process is alive (200 always, and fast: nothing heavy
  runs on the event loop).
- ``GET /readyz``: 200 once the model is loaded; 503 with the reason while
  loading, after a failed load (shortened, internal addresses blanked), while
  a model call runs past the prediction timeout, and while draining.
- ``GET /v1/models``: which model and version this replica serves.
- ``POST /v1/predict`` (and MLflow's ``/invocations``): MLflow scoring payloads;
  see :mod:`predicting` for what each status means.
- ``GET /metrics``: Prometheus text format.
- ``/docs``, ``/redoc``, ``/openapi.json`` only with ``SWARMAI_DOCS=1``.

Every response carries ``X-Model-Name`` and ``X-Model-Version`` so a client
behind the gateway can tell which replica's model answered.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from swarmai.incontainer.server.asgi import BodyLimit, ModelHeaders, Shortcut
from swarmai.incontainer.server.batching import Batcher
from swarmai.incontainer.server.config import Settings
from swarmai.incontainer.server.fastpath import ArrayRows
from swarmai.incontainer.server.loader import LoadedModel, ModelLoader, parse_model_uri
from swarmai.incontainer.server.metrics import Metrics
from swarmai.incontainer.server.predicting import Predictions
from swarmai.incontainer.server.state import ModelHolder, freeze_heap
from swarmai.incontainer.server.tables import model_data

log = logging.getLogger(__name__)
access_log = logging.getLogger("swarmai.access")

PREDICT_PATHS = frozenset({"/v1/predict", "/invocations"})
NAME_HEADER = "X-Model-Name"
VERSION_HEADER = "X-Model-Version"
UNKNOWN_VERSION = "unknown"
# Docker probes /readyz every few seconds and Prometheus scrapes /metrics: the
# access log skips their successes, which would bury the requests worth reading.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class ModelServer:
    """One model behind one ASGI app; ``app`` is what uvicorn runs."""

    def __init__(
        self, settings: Settings, loader: ModelLoader, *, max_retry_delay_s: float = 30.0,
        freeze_after_load: bool = False,
    ) -> None:
        self.settings = settings
        self.model_name = settings.model_name or parse_model_uri(settings.model_uri).name
        self.metrics = Metrics()
        # The freeze is process-wide: the runner asks for it, tests that build
        # many servers in one process do not.
        self.holder = ModelHolder(
            loader, max_retry_delay_s=max_retry_delay_s, on_loaded=self._on_loaded,
            settle=freeze_heap if freeze_after_load else None,
        )
        self.batcher = Batcher(
            self._predict,
            max_batch_size=settings.max_batch_size,
            max_delay_s=settings.max_delay_ms / 1000.0,
            on_batch=self.metrics.batch_rows.observe,
            max_queue=settings.max_queue,
            prepare=self._model_input,
        )
        self.predictions = Predictions(settings, self.holder, self.batcher, self.metrics)
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

    def _model_input(self, parts: list[Any], params: dict[str, Any] | None) -> Any:
        """A batch's data as the model gets it: a float64 array where the loaded
        model's array path takes it (see :mod:`fastpath`), else one DataFrame or array."""
        loaded = self.holder.loaded
        fast = loaded.array_path if loaded is not None and params is None else None
        rows = fast.rows(parts) if fast is not None else None
        return rows if rows is not None else model_data(parts)

    def _predict(self, data: Any, params: dict[str, Any] | None) -> Any:
        """Runs in the batcher's thread, once the model is loaded."""
        if isinstance(data, ArrayRows):
            return data.call(data.array)
        loaded = self.holder.loaded
        if loaded is None:  # only reachable if a request raced a reload; be explicit
            raise RuntimeError("model is not loaded")
        if params is None:
            return loaded.model.predict(data)
        predict: Any = loaded.model.predict  # pyfunc models take params=; the protocol need not
        return predict(data, params=params)

    def not_ready_reason(self) -> str | None:
        """``None`` when the gateway should send traffic here, else why not."""
        reason = self.holder.not_ready_reason()
        running = self.batcher.running_for()
        if reason is None and running is not None and running > self.settings.predict_timeout_s:
            # Requests would only queue behind it and time out: let the
            # gateway (and Docker's healthcheck) route around this replica.
            reason = f"model stuck: a prediction has run {running:.0f} s"
        return reason

    @asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self.batcher.start()
        self.holder.start()
        try:
            yield
        finally:
            # uvicorn calls this after in-flight requests finished (or the
            # drain timeout passed), so nothing useful is left in the queue.
            self.holder.stop()
            await self.batcher.stop()

    def _build_app(self) -> ASGIApp:
        routes = [("/healthz", "GET", self._healthz), ("/readyz", "GET", self._readyz),
                  ("/v1/models", "GET", self._models), ("/metrics", "GET", self._metrics),
                  *((path, "POST", self.predictions.endpoint) for path in sorted(PREDICT_PATHS))]
        framework: Starlette
        if self.settings.docs:
            # Imported here: FastAPI (and pydantic) cost a second of start-up.
            from fastapi import FastAPI

            framework = FastAPI(title=f"swarmai model server: {self.model_name}",
                                lifespan=self._lifespan)
            for path, method, endpoint in routes:
                framework.add_api_route(path, endpoint, methods=[method])
        else:
            framework = Starlette(lifespan=self._lifespan, routes=[
                Route(path, endpoint, methods=[method]) for path, method, endpoint in routes])
        # Outermost first: headers and metrics see every response, the 413s too.
        app: ASGIApp = Shortcut(framework, {("POST", path): self.predictions.endpoint
                                            for path in PREDICT_PATHS})
        app = BodyLimit(app, max_bytes=self.settings.max_body_bytes,
                        on_reject=self.metrics.rejected.labels("too_large").inc)
        return ModelHeaders(app, headers=self._headers, on_response=self._observe)

    def _headers(self) -> dict[str, str]:
        return {NAME_HEADER: self.model_name, VERSION_HEADER: self.version}

    def _observe(self, method: str, path: str, status: int, seconds: float) -> None:
        if path in PREDICT_PATHS:
            self.metrics.requests.labels(str(status)).inc()
            self.metrics.latency.observe(seconds)
        if self._sampled(path, status):
            access_log.info("%s %s %d %.1f ms", method, path, status, seconds * 1000)

    def _sampled(self, path: str, status: int) -> bool:
        """Whether this response gets an access-log line (``SWARMAI_ACCESS_LOG``)."""
        rate = self.settings.access_log
        if rate <= 0 or (path in QUIET_PATHS and status < 400):
            return False
        return rate >= 1 or random.random() < rate

    async def _healthz(self, _request: Request) -> JSONResponse:
        return JSONResponse({"alive": True})

    async def _readyz(self, _request: Request) -> JSONResponse:
        reason = self.not_ready_reason()
        if reason is None:
            return JSONResponse({"ready": True})
        return JSONResponse({"ready": False, "error": reason}, status_code=503)

    async def _models(self, _request: Request) -> JSONResponse:
        loaded = self.holder.loaded
        return JSONResponse({
            "name": self.model_name,
            "registered_name": loaded.registered_name if loaded else None,
            "version": loaded.version if loaded else None,
            "uri": self.settings.model_uri,
            "ready": self.not_ready_reason() is None,
        })

    async def _metrics(self, _request: Request) -> Response:
        return Response(self.metrics.render(), media_type=CONTENT_TYPE_LATEST)
