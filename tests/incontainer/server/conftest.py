"""Fakes and fixtures for the model-server tests: no MLflow, no network.

Helpers are handed out as fixtures (not imported) so the tests do not depend
on how pytest puts test directories on ``sys.path``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]
import pytest
from fastapi.testclient import TestClient

from swarmai.incontainer.server import LoadedModel, ModelLoader, ModelServer, Settings


class DoublingModel:
    """Doubles its input: column ``x`` of a DataFrame, or a whole array.

    Records the row count and params of every call, so tests see the batches.
    """

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.batches: list[int] = []
        self.params: list[dict[str, Any] | None] = []
        self._lock = threading.Lock()

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        with self._lock:
            self.batches.append(len(data))
            self.params.append(params)
        time.sleep(self.delay_s)
        if isinstance(data, pd.DataFrame):
            return data["x"] * 2
        return np.asarray(data) * 2


def loader_for(model: Any, version: str = "7") -> ModelLoader:
    """A ModelLoader that hands back ``model`` at once."""
    return lambda: LoadedModel(model=model, registered_name="churn", version=version)


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"model_uri": "models:/churn@production", "model_name": "churn-api"}
    values.update(overrides)
    return Settings(**values)


def wait_ready(client: TestClient, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.01)
    raise AssertionError(f"not ready after {timeout}s: {client.get('/readyz').json()}")


@pytest.fixture
def fakes() -> Any:
    """The helpers above, as one namespace."""

    class Fakes:
        DoublingModel = globals()["DoublingModel"]
        loader_for = staticmethod(loader_for)
        make_settings = staticmethod(make_settings)
        wait_ready = staticmethod(wait_ready)

    return Fakes


@pytest.fixture
def start() -> Iterator[Callable[..., tuple[ModelServer, TestClient]]]:
    """Start a server (lifespan included) around a loader; stopped at teardown.

    ``start(loader, ready=True, retry_s=0.0, **settings)``; ``ready`` waits for /readyz.
    """
    with ExitStack() as stack:

        def _start(
            loader: ModelLoader, *, ready: bool = True, retry_s: float = 0.0, **overrides: Any
        ) -> tuple[ModelServer, TestClient]:
            server = ModelServer(make_settings(**overrides), loader, max_retry_delay_s=retry_s)
            client = stack.enter_context(TestClient(server.app))
            if ready:
                wait_ready(client)
            return server, client

        yield _start


@pytest.fixture
def model() -> DoublingModel:
    return DoublingModel()


@pytest.fixture
def client(model: DoublingModel, start: Callable[..., tuple[ModelServer, TestClient]]) -> Any:
    """A ready server (batch size 1) around ``model``."""
    return start(loader_for(model))[1]
