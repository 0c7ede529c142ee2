"""Overload is shed, not fatal: body limit, bounded queue, timeout, fast probes, no docs.

Slow and stuck models are ``GatedModel``s, released by the test, so nothing
here depends on how fast this machine is; the only timing assertions are
generous upper bounds (a probe under a second while work is held).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]
import pytest

from swarmai.incontainer.server import predicting

JSON = {"Content-Type": "application/json"}
ONE = {"instances": [1]}


def test_a_full_queue_sheds_at_once_with_503_and_retry_after(start: Any, fakes: Any) -> None:
    model = fakes.GatedModel()
    server, client = start(fakes.loader_for(model), max_queue=2)

    async def scenario(http: Any) -> Any:
        try:
            held = [asyncio.ensure_future(http.post("/v1/predict", json=ONE)) for _ in range(2)]
            # One inside predict, one queued behind it: the queue is full.
            await fakes.until(lambda: model.entered.is_set() and server.predictions.in_flight == 2)
            started = time.monotonic()
            refused = await http.post("/v1/predict", json=ONE)
            refused_after = time.monotonic() - started
        finally:
            model.release.set()
        return refused, refused_after, await asyncio.gather(*held)

    refused, refused_after, held = fakes.in_app_loop(client, scenario)
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["X-Model-Name"] == "churn-api"
    assert refused.json()["error"].startswith("server is busy")
    assert refused_after < 1.0  # refused at once, not after the queue moved
    assert [r.json() for r in held] == [{"predictions": [2]}] * 2
    assert server.predictions.in_flight == 0
    metrics = client.get("/metrics").text
    assert "swarmai_requests_shed_total 1.0" in metrics
    assert "swarmai_requests_in_flight 0.0" in metrics


def test_a_stuck_model_is_504_and_fails_readiness_until_it_returns(
    start: Any, fakes: Any
) -> None:
    model = fakes.GatedModel()
    _, client = start(fakes.loader_for(model), predict_timeout_s=0.3)
    try:
        started = time.monotonic()
        response = client.post("/v1/predict", json=ONE)
        assert time.monotonic() - started < 5.0
        assert response.status_code == 504
        assert response.json() == {"error": "the model did not answer within 0.3 s"}
        ready = _poll(client, "/readyz", 503)
        assert ready.json()["error"].startswith("model stuck: a prediction has run")
        assert client.get("/healthz").status_code == 200
    finally:
        model.release.set()
    fakes.wait_ready(client)  # back once the call returned
    assert client.post("/v1/predict", json=ONE).json() == {"predictions": [2]}
    assert "swarmai_requests_timed_out_total 1.0" in client.get("/metrics").text


def test_a_body_over_the_limit_is_413_from_its_content_length(
    start: Any, fakes: Any, model: Any
) -> None:
    _, client = start(fakes.loader_for(model), max_body_bytes=1000)
    big = json.dumps({"instances": [1] * 600}).encode()
    assert len(big) > 1000
    response = client.post("/v1/predict", content=big, headers=JSON)
    assert response.status_code == 413
    assert response.json() == {"error": "request body is larger than the limit of 1000 bytes"}
    assert response.headers["X-Model-Name"] == "churn-api"
    assert model.batches == []
    at_limit = json.dumps({"instances": [1] * 300}).encode().ljust(1000)
    assert client.post("/v1/predict", content=at_limit, headers=JSON).status_code == 200
    assert 'swarmai_requests_rejected_total{reason="too_large"} 1.0' in client.get("/metrics").text


def test_a_chunked_body_is_cut_off_at_the_limit_without_reading_it_all(
    start: Any, fakes: Any, model: Any
) -> None:
    _, client = start(fakes.loader_for(model), max_body_bytes=10_000)
    chunks_sent = 0

    async def endless() -> AsyncIterator[bytes]:
        # 1 MB in 1 KB chunks, with no Content-Length: only counting stops it.
        nonlocal chunks_sent
        yield b'{"instances": ['
        for _ in range(1000):
            chunks_sent += 1
            yield b"1," * 512

    async def scenario(http: Any) -> Any:
        return await http.post("/v1/predict", content=endless(), headers=JSON)

    response = fakes.in_app_loop(client, scenario)
    assert response.status_code == 413
    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert chunks_sent <= 11  # 10 KB: read up to the limit, not to the end
    assert model.batches == []


def test_a_body_that_never_finishes_is_408_within_the_timeout(
    start: Any, fakes: Any, model: Any
) -> None:
    _, client = start(fakes.loader_for(model), predict_timeout_s=0.3)

    async def trickle() -> AsyncIterator[bytes]:
        yield b'{"instances": [1'
        await asyncio.sleep(10)
        yield b"]}"

    async def scenario(http: Any) -> Any:
        started = time.monotonic()
        response = await http.post("/v1/predict", content=trickle(), headers=JSON)
        return response, time.monotonic() - started

    response, elapsed = fakes.in_app_loop(client, scenario)
    assert response.status_code == 408
    assert "not received in time" in response.json()["error"]
    assert elapsed < 5.0


@pytest.mark.parametrize("step", ["parse_body", "render_predictions"])
def test_probes_answer_while_a_body_is_parsed_or_an_answer_serialised(
    start: Any, fakes: Any, model: Any, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    # The step is held until the probes were answered: were it on the event
    # loop, they would wait the full 10 s and the bound below would fail.  The
    # request is over the size the server parses and renders on the loop
    # (small ones take microseconds there).
    large = {"instances": list(range(5000))}
    entered, proceed = threading.Event(), threading.Event()
    real = getattr(predicting, step)

    def held(*args: Any) -> Any:
        entered.set()
        proceed.wait(10)
        return real(*args)

    monkeypatch.setattr(predicting, step, held)
    _, client = start(fakes.loader_for(model))
    with ThreadPoolExecutor(max_workers=1) as pool:
        answer = pool.submit(client.post, "/v1/predict", json=large)
        try:
            assert entered.wait(10)
            started = time.monotonic()
            assert client.get("/healthz").status_code == 200
            assert client.get("/readyz").status_code == 200
            elapsed = time.monotonic() - started
        finally:
            proceed.set()
        assert answer.result(timeout=30).json() == {"predictions": [2 * i for i in range(5000)]}
    assert elapsed < 1.0


def test_healthz_stays_fast_during_a_large_request(start: Any, fakes: Any) -> None:
    # End to end with real work (the held-step test above is the exact guard):
    # a 5 MB body in, a 100k-record answer out, and the probe well inside the
    # 4 s timeout of the stack's healthcheck throughout, even on a busy CI box.
    class Echo:
        def predict(self, data: Any) -> Any:
            return data  # a large DataFrame back: serialising it is real work

    _, client = start(fakes.loader_for(Echo()))
    records = [{"x": i, "y": i * 0.5, "label": f"row {i}"} for i in range(100_000)]
    body = json.dumps({"dataframe_records": records}).encode()
    with ThreadPoolExecutor(max_workers=1) as pool:
        answer = pool.submit(client.post, "/v1/predict", content=body, headers=JSON)
        slowest = 0.0
        while not answer.done():
            started = time.monotonic()
            assert client.get("/healthz").status_code == 200
            slowest = max(slowest, time.monotonic() - started)
        response = answer.result()
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == len(records)
    assert slowest < 2.0


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_api_docs_are_off_by_default(client: Any, path: str) -> None:
    assert client.get(path).status_code == 404


def test_api_docs_are_served_when_asked(start: Any, fakes: Any, model: Any) -> None:
    _, client = start(fakes.loader_for(model), docs=True)
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path).status_code == 200, path
    assert "/v1/predict" in client.get("/openapi.json").json()["paths"]


def test_every_error_is_json_with_the_model_headers(client: Any) -> None:
    frame = pd.DataFrame({"x": [1]})
    for response in (
        client.post("/v1/predict", content=b"{", headers=JSON),
        client.post("/v1/predict", content=frame.to_csv(), headers={"Content-Type": "text/csv"}),
    ):
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["X-Model-Version"] == "7"
        assert "error" in response.json()


def _poll(client: Any, path: str, status: int, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(path)
        if response.status_code == status or time.monotonic() > deadline:
            assert response.status_code == status, response.text
            return response
        time.sleep(0.01)
