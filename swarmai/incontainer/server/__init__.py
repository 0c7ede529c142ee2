"""swarmai's own model server (the ``fastapi`` runtime), run inside a container.

Install with ``pip install swarmai[server]`` and start with
``python -m swarmai.incontainer.server``; configuration comes from the environment (see
:class:`Settings`).  MLflow is only imported when the real loader runs.

The names below are imported when first used, not with the package: the entry
point (``__main__``) must set up multiprocess metrics before anything imports
prometheus_client (workers.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from swarmai.incontainer.server.app import ModelServer
    from swarmai.incontainer.server.config import ConfigError, Settings
    from swarmai.incontainer.server.loader import (
        LoadedModel,
        ModelCache,
        ModelLoader,
        mlflow_loader,
    )
    from swarmai.incontainer.server.runner import serve

_WHERE = {
    "ConfigError": "config",
    "LoadedModel": "loader",
    "ModelCache": "loader",
    "ModelLoader": "loader",
    "ModelServer": "app",
    "Settings": "config",
    "mlflow_loader": "loader",
    "serve": "runner",
}

__all__ = [
    "ConfigError",
    "LoadedModel",
    "ModelCache",
    "ModelLoader",
    "ModelServer",
    "Settings",
    "mlflow_loader",
    "serve",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
