"""Per-model settings of the stack file, spelled for each runtime.

``environment`` and ``volumes`` reach every model server as written (the spec
keeps them off what swarmai sets itself); ``server`` becomes environment
variables of swarmai's FastAPI server, TorchServe's config.properties, or TF
Serving flags.  Only keys set in the stack file are rendered, so each runtime
keeps its own defaults otherwise.
"""

from __future__ import annotations

import math
from typing import Any

from swarmai.render.plan import Mount
from swarmai.spec import Model

# What swarmai's FastAPI server reads (swarmai/incontainer/server/config.py).
FASTAPI_WORKERS = "SWARMAI_WORKERS"
FASTAPI_MAX_BODY_BYTES = "SWARMAI_MAX_BODY_BYTES"
FASTAPI_MAX_QUEUE = "SWARMAI_MAX_QUEUE"
FASTAPI_PREDICT_TIMEOUT_S = "SWARMAI_PREDICT_TIMEOUT_S"
FASTAPI_ACCESS_LOG = "SWARMAI_ACCESS_LOG"
FASTAPI_DOCS = "SWARMAI_DOCS"

_MB = 1024 * 1024
MAX_WORKERS = 64  # the spec's and the server's bound


def user_environment(model: Model) -> dict[str, str]:
    """The stack file's ``environment`` of ``model``, as written."""
    return dict(model.environment)


def user_mounts(model: Model) -> tuple[Mount, ...]:
    """The stack file's ``volumes`` of ``model``: named volumes or host paths."""
    return tuple(Mount(v.source, v.target, read_only=v.read_only) for v in model.volumes)


def fastapi_environment(model: Model) -> dict[str, str]:
    """The FastAPI server's settings from ``server``: one variable per key that is
    set, and the worker count (:func:`fastapi_workers`)."""
    workers = fastapi_workers(model)
    server = model.server
    if server is None:
        return {FASTAPI_WORKERS: str(workers)} if workers is not None else {}
    values = {
        FASTAPI_WORKERS: workers,
        FASTAPI_MAX_BODY_BYTES: server.max_body_mb * _MB if server.max_body_mb else None,
        FASTAPI_MAX_QUEUE: server.max_queue,
        FASTAPI_PREDICT_TIMEOUT_S: server.timeout_s,
        FASTAPI_ACCESS_LOG: server.access_log,
        FASTAPI_DOCS: None if server.docs is None else int(server.docs),
    }
    return {name: str(value) for name, value in values.items() if value is not None}


def fastapi_workers(model: Model) -> int | None:
    """Server processes per replica: ``server.workers``, else the CPUs the replica
    is given (``resources.cpus``, rounded up), else the server's one.

    A GPU model keeps one unless told: each process would hold its own copy of
    the model in the device's memory.
    """
    if model.server is not None and model.server.workers is not None:
        return model.server.workers
    cpus = model.resources.cpus if model.resources is not None else None
    if cpus is None or model.gpus is not None:
        return None
    return min(MAX_WORKERS, max(1, math.ceil(float(cpus))))


def torchserve_model_settings(model: Model) -> dict[str, Any]:
    """``server`` keys that go into the model's entry of config.properties' ``models``.

    Per-model settings there win over TorchServe's global defaults
    (``default_workers_per_model``, ``default_response_timeout``), so workers
    and the timeout are set where TorchServe looks first.  TorchServe restarts
    a worker that exceeds ``responseTimeout``.
    """
    server = model.server
    settings: dict[str, Any] = {}
    if server is not None and server.workers is not None:
        settings["minWorkers"] = settings["maxWorkers"] = server.workers
    if server is not None and server.timeout_s is not None:
        settings["responseTimeout"] = server.timeout_s
    return settings


def torchserve_property_lines(model: Model) -> list[str]:
    """``server`` keys that are global lines of config.properties (one model per server)."""
    server = model.server
    lines: list[str] = []
    if server is not None and server.max_body_mb is not None:
        size = server.max_body_mb * _MB
        # Responses too: TorchServe's default (6.5 MB) would fail the answers
        # to the larger batches a larger request limit lets in.
        lines += [f"max_request_size={size}", f"max_response_size={size}"]
    if server is not None and server.max_queue is not None:
        lines.append(f"job_queue_size={server.max_queue}")
    return lines


def tfserving_flags(model: Model) -> list[str]:
    """``server`` keys TF Serving honours (the spec refuses the others)."""
    server = model.server
    if server is not None and server.timeout_s is not None:
        return [f"--rest_api_timeout_in_ms={server.timeout_s * 1000}"]
    return []
