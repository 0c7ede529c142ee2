"""The model-sync step's settings, read once from its container's environment.

``swarmai render`` writes these variables into each ``sync-<model>`` service
(see ``swarmai/render/runtimes.py``); the defaults below are what a variable
left unset means.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from swarmai import modeluri
from swarmai.incontainer.server.config import DEFAULT_CACHE_DIR, LOG_LEVELS, ConfigError

Layout = Literal["tfserving", "torchserve"]
LAYOUTS: tuple[Layout, ...] = ("tfserving", "torchserve")
# The model name becomes a directory and a .mar name; torch-model-archiver
# accepts exactly this grammar, and it rules out path separators.
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class SyncSettings:
    """Everything one sync step needs; one step serves one model."""

    model_uri: str
    model_name: str
    layout: Layout
    tracking_uri: str | None = None
    store: str = "/store"
    cache_dir: str = DEFAULT_CACHE_DIR
    poll_seconds: float = 30.0
    # Version folders TF Serving may fall back to without a download.
    keep_versions: int = 2
    archive_version: str = "1.0"
    # A TorchServe handler (built-in name or .py path) for artifacts that ship
    # no handler.py; None means swarmai's bundled JSON-tensor handler.
    torchserve_handler: str | None = None
    log_level: str = "info"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SyncSettings:
        """Build settings from ``environ`` (``os.environ`` when ``None``)."""
        env = os.environ if environ is None else environ
        uri = _required(env, "MODEL_URI", "for example models:/churn@production")
        try:
            registered = modeluri.parse(uri).name
        except modeluri.ModelUriError as error:
            raise ConfigError(f"MODEL_URI: {error}") from None
        return cls(
            model_uri=uri,
            model_name=_model_name(env.get("MODEL_NAME", "").strip() or registered),
            layout=_layout(_required(env, "SWARMAI_LAYOUT", " or ".join(LAYOUTS))),
            tracking_uri=env.get("MLFLOW_TRACKING_URI") or None,
            store=env.get("SWARMAI_STORE") or "/store",
            cache_dir=env.get("SWARMAI_MODEL_CACHE") or DEFAULT_CACHE_DIR,
            poll_seconds=_positive(env, "SWARMAI_POLL_SECONDS", 30.0),
            keep_versions=int(_positive(env, "SWARMAI_KEEP_VERSIONS", 2, whole=True)),
            archive_version=env.get("SWARMAI_ARCHIVE_VERSION", "").strip() or "1.0",
            torchserve_handler=env.get("SWARMAI_TORCHSERVE_HANDLER", "").strip() or None,
            log_level=_log_level(env.get("SWARMAI_LOG_LEVEL", "").strip() or "info"),
        )


def _required(env: Mapping[str, str], name: str, example: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set ({example})")
    return value


def _model_name(name: str) -> str:
    if not _MODEL_NAME.fullmatch(name):
        raise ConfigError(f"MODEL_NAME={name!r} must be letters, digits, '_', '.' or '-'")
    return name


def _layout(raw: str) -> Layout:
    if raw not in LAYOUTS:
        raise ConfigError(f"SWARMAI_LAYOUT={raw!r} is not one of {', '.join(LAYOUTS)}")
    return raw


def _positive(env: Mapping[str, str], name: str, default: float, *, whole: bool = False) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        kind = "whole number" if whole else "number"
        raise ConfigError(f"{name}={raw!r} is not a {kind}") from None
    if value <= 0:
        raise ConfigError(f"{name}={raw!r} must be greater than 0")
    return value


def _log_level(raw: str) -> str:
    level = raw.lower()
    if level not in LOG_LEVELS or level == "trace":
        raise ConfigError(f"SWARMAI_LOG_LEVEL={raw!r} is not one of critical, error, "
                          "warning, info, debug")
    return level
