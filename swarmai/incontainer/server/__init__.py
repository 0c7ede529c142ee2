"""swarmai's own model server (the ``fastapi`` runtime), run inside a container.

Install with ``pip install swarmai[server]`` and start with
``python -m swarmai.incontainer.server``; configuration comes from the environment (see
:class:`Settings`).  MLflow is only imported when the real loader runs.
"""

from swarmai.incontainer.server.app import ModelServer
from swarmai.incontainer.server.config import ConfigError, Settings
from swarmai.incontainer.server.loader import LoadedModel, ModelCache, ModelLoader, mlflow_loader
from swarmai.incontainer.server.runner import serve

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
