"""Runtime settings, read once from the container's environment.

The renderer (``swarmai render``) writes these variables into each model
service; nothing else configures the server, so one image serves every model.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from swarmai.errors import SwarmaiError

DEFAULT_CACHE_DIR = "/var/cache/swarmai/models"
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_BATCH_SIZE = 32

N = TypeVar("N", int, float)
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")  # uvicorn's names


class ConfigError(SwarmaiError):
    """An environment variable is missing or malformed; the server cannot start."""

    exit_code = 2


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to know, with the defaults documented here."""

    model_uri: str
    tracking_uri: str | None = None
    # The stack's name for the model, sent in X-Model-Name; the registered
    # name may differ (one registered model can back several stack entries).
    model_name: str | None = None
    # Dynamic batching is on unless a stack turns it off (max_batch_size 1):
    # requests that queue while the model computes run together next, so the
    # model's per-call cost is shared.  No delay by default: a batch takes what
    # is waiting and never holds a lone request back.
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_delay_ms: float = 0.0
    cache_dir: str = DEFAULT_CACHE_DIR
    host: str = "0.0.0.0"
    port: int = 8000
    # Upper bound on waiting for in-flight requests after SIGTERM; the stack's
    # stop_grace_period must be longer, or Docker kills us mid-drain.
    drain_seconds: int = 10
    # How long after SIGTERM the server keeps accepting connections, so the
    # gateway drops this replica (Traefik's Swarm provider polls every 2 s in
    # swarmai's stacks) before its socket closes.  0 closes at once.
    deregister_seconds: float = 0.0
    log_level: str = "info"
    # Overload and abuse limits: past each one the server sheds the request
    # (4xx/5xx at once) instead of buffering it and falling over.
    # Largest request body in bytes (413 beyond), from Content-Length and
    # counted while a chunked body streams in.
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Predictions being read, queued or computed on this replica; one more is
    # refused with 503 and Retry-After, so the gateway can try another replica.
    max_queue: int = 64
    # Seconds a prediction may take, queueing included (504 beyond).  A model
    # call running longer than this makes /readyz fail until it returns.
    predict_timeout_s: float = 30.0
    # Serve /docs, /redoc and /openapi.json: off, since they describe the
    # server to anyone who can reach it and no client needs them.
    docs: bool = False
    # The fraction of requests written to the access log: a log line costs more
    # than a small model's prediction, so none by default.  Failures (5xx) are
    # logged with their cause either way.
    access_log: float = 0.0
    # Server processes on the port, each with its own copy of the model
    # (workers.py).  The renderer sets it to the CPUs a replica is given.
    workers: int = 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (``os.environ`` when ``None``)."""
        env = os.environ if environ is None else environ
        model_uri = env.get("MODEL_URI", "").strip()
        if not model_uri:
            raise ConfigError("MODEL_URI is not set (for example models:/churn@production)")
        return cls(
            model_uri=model_uri,
            tracking_uri=env.get("MLFLOW_TRACKING_URI") or None,
            model_name=env.get("MODEL_NAME") or None,
            max_batch_size=_number(env, "SWARMAI_MAX_BATCH_SIZE", int, DEFAULT_MAX_BATCH_SIZE,
                                   minimum=1),
            max_delay_ms=_number(env, "SWARMAI_MAX_DELAY_MS", float, 0.0, minimum=0),
            cache_dir=env.get("SWARMAI_MODEL_CACHE") or DEFAULT_CACHE_DIR,
            host=env.get("SWARMAI_HOST") or "0.0.0.0",
            port=_number(env, "PORT", int, 8000, minimum=1, maximum=65535),
            drain_seconds=_number(env, "SWARMAI_DRAIN_SECONDS", int, 10, minimum=0),
            deregister_seconds=_number(env, "SWARMAI_DEREGISTER_SECONDS", float, 0.0,
                                       minimum=0),
            log_level=_log_level(env.get("SWARMAI_LOG_LEVEL") or "info"),
            max_body_bytes=_number(env, "SWARMAI_MAX_BODY_BYTES", int, DEFAULT_MAX_BODY_BYTES,
                                   minimum=1),
            max_queue=_number(env, "SWARMAI_MAX_QUEUE", int, 64, minimum=1),
            predict_timeout_s=_number(env, "SWARMAI_PREDICT_TIMEOUT_S", float, 30.0,
                                      minimum=0.001),
            docs=_flag(env, "SWARMAI_DOCS"),
            access_log=_number(env, "SWARMAI_ACCESS_LOG", float, 0.0, minimum=0, maximum=1),
            workers=_number(env, "SWARMAI_WORKERS", int, 1, minimum=1, maximum=64),
        )


def _number(
    env: Mapping[str, str],
    name: str,
    kind: type[N],
    default: N,
    *,
    minimum: float,
    maximum: float | None = None,
) -> N:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and at most {maximum:g}" if maximum is not None else ""
        raise ConfigError(f"{name}={raw!r} must be at least {minimum:g}{upper}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name}={raw!r} is not a flag (write 1 or 0)")


def _log_level(raw: str) -> str:
    level = raw.strip().lower()
    if level not in LOG_LEVELS:
        raise ConfigError(f"SWARMAI_LOG_LEVEL={raw!r} is not one of {', '.join(LOG_LEVELS)}")
    return level
