"""Fakes and fixtures for the model-server tests: no MLflow, no network.

Helpers are handed out as fixtures (not imported) so the tests do not depend
on how pytest puts test directories on ``sys.path``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx2
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


class GatedModel(DoublingModel):
    """Doubles, but only once ``release`` is set: a slow or stuck model on demand.

    ``entered`` is set when a call is inside ``predict``.  The wait is bounded
    so a failing test cannot leave a thread blocked for ever.
    """

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        self.entered.set()
        self.release.wait(10)
        return super().predict(data, params)


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


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait, on the event loop, until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.01)


def in_app_loop(client: TestClient, scenario: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run ``scenario(http)`` on the app's own event loop, with an async client.

    For what the sync TestClient cannot do: concurrent requests from one
    task, and request bodies that stream in chunk by chunk.
    """

    async def main() -> Any:
        transport = httpx2.ASGITransport(app=client.app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://replica") as http:
            return await scenario(http)

    assert client.portal is not None, "the client must be started (start fixture)"
    return client.portal.call(main)


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Fail the test if anything was logged with a traceback (a client's mistake is not)."""
    caplog.set_level(logging.DEBUG)
    yield caplog
    with_traceback = [record.getMessage() for record in caplog.records if record.exc_info]
    assert not with_traceback, f"logged with a traceback: {with_traceback}"
    assert "Traceback" not in caplog.text


@pytest.fixture
def fakes() -> Any:
    """The helpers above, as one namespace."""

    class Fakes:
        DoublingModel = globals()["DoublingModel"]
        GatedModel = globals()["GatedModel"]
        until = staticmethod(until)
        in_app_loop = staticmethod(in_app_loop)
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
