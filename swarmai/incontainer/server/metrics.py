"""Prometheus metrics of one server, on a registry of its own.

A private registry (not prometheus_client's global one) lets tests build many
apps in one process, and keeps library-default collectors out unless we ask.
With several worker processes (workers.py) the values live in files that every
worker writes and ``render`` sums; each gauge says how to combine them.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.process_collector import ProcessCollector

from swarmai.incontainer.server.workers import MULTIPROC_ENV

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class Metrics:
    """The server's counters, histograms and gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        if not self._multiprocess:  # with workers they would be one random worker's
            ProcessCollector(registry=self.registry)  # CPU, memory, open fds
        self.requests = Counter(
            "swarmai_requests",
            "Prediction requests, by HTTP status code.",
            ["status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "swarmai_request_latency_seconds",
            "Prediction request latency, queueing and batching included.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # Shedding, by cause: an operator tells overload from abuse from a
        # stuck model without reading logs.
        self.in_flight = Gauge(
            "swarmai_requests_in_flight",
            "Prediction requests being read, queued or computed.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.shed = Counter(
            "swarmai_requests_shed",
            "Prediction requests refused with 503 because the queue was full.",
            registry=self.registry,
        )
        self.timed_out = Counter(
            "swarmai_requests_timed_out",
            "Prediction requests answered 504: the model did not answer in time.",
            registry=self.registry,
        )
        self.rejected = Counter(
            "swarmai_requests_rejected",
            "Requests refused as the client's mistake (4xx), by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "swarmai_batch_size",
            "Rows per model.predict call.",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.model_loaded = Gauge(
            "swarmai_model_loaded",
            "1 once the model is loaded and serving (in every worker), else 0.",
            registry=self.registry,
            multiprocess_mode="livemin",
        )
        self.model_info = Gauge(
            "swarmai_model_info",
            "Always 1; labels name the registered model and version being served.",
            ["registered_name", "version"],
            registry=self.registry,
            multiprocess_mode="livemax",
        )

    def render(self) -> bytes:
        """The text exposition format, for GET /metrics."""
        if self._multiprocess:
            summed = CollectorRegistry()
            MultiProcessCollector(summed)  # type: ignore[no-untyped-call]
            return generate_latest(summed)
        return generate_latest(self.registry)
