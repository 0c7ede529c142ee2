"""The HTTP surface of the model server, against an in-process fake model."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from typing import Any

import pytest

PREDICT_CASES = [
    ({"dataframe_split": {"columns": ["x"], "data": [[1], [2], [3]]}}, [2, 4, 6]),
    (
        {"dataframe_split": {"index": [5, 6], "columns": ["x", "y"], "data": [[1, 0], [2, 0]]}},
        [2, 4],
    ),
    ({"dataframe_records": [{"x": 1.5}, {"x": -2}]}, [3.0, -4.0]),
    ({"instances": [1, 2, 3]}, [2, 4, 6]),
    ({"instances": [[1, 2], [3, 4]]}, [[2, 4], [6, 8]]),
    ({"inputs": [[0.5], [1.0]]}, [[1.0], [2.0]]),
]


@pytest.mark.parametrize(("payload", "expected"), PREDICT_CASES)
def test_every_payload_format_predicts(client: Any, payload: Any, expected: Any) -> None:
    response = client.post("/v1/predict", json=payload)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": expected}


def test_invocations_is_an_alias_for_mlflow_clients(client: Any) -> None:
    response = client.post("/invocations", json={"instances": [4]})
    assert response.json() == {"predictions": [8]}


def test_params_reach_the_model(client: Any, model: Any) -> None:
    response = client.post("/v1/predict", json={"instances": [1], "params": {"t": 0.5}})
    assert response.status_code == 200
    assert model.params == [{"t": 0.5}]


BAD_PAYLOADS = [
    (b"not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b"{}", "exactly one of"),
    (b'{"instances": [1], "inputs": [1]}', "exactly one of"),
    (b'{"instances": [1], "extra": 1}', "unexpected field(s) extra"),
    (b'{"instances": [1], "params": [1]}', "params must be a JSON object"),
    (b'{"instances": []}', "no rows"),
    (b'{"instances": 3}', "must be a list"),
    (b'{"instances": [[1, 2], [3]]}', "ragged"),
    (b'{"inputs": {"a": [1]}}', "named tensors"),
    (b'{"instances": [{"a": 1}]}', "named tensors"),
    (b'{"dataframe_split": [[1]]}', "dataframe_split must be an object"),
    (b'{"dataframe_split": {"columns": ["x"], "data": [[1, 2]]}}', "does not form a table"),
    (b'{"dataframe_records": [1, 2]}', "list of objects"),
]


@pytest.mark.parametrize(("body", "message"), BAD_PAYLOADS)
def test_bad_payloads_get_400_with_a_reason(
    client: Any, no_tracebacks: Any, body: bytes, message: str
) -> None:
    response = client.post("/v1/predict", content=body)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_a_server_fault_is_a_500_with_its_message_and_a_logged_traceback(
    start: Any, fakes: Any, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def predict(self, data: Any) -> Any:
            raise RuntimeError("CUDA out of memory")

    _, client = start(fakes.loader_for(Broken()))
    caplog.set_level(logging.INFO)
    response = client.post("/v1/predict", json={"instances": [1]})
    assert response.status_code == 500
    assert response.json() == {"error": "prediction failed: RuntimeError: CUDA out of memory"}
    assert any(record.exc_info for record in caplog.records)


def test_model_headers_on_predict_readyz_and_errors(client: Any) -> None:
    for response in (
        client.post("/v1/predict", json={"instances": [1]}),
        client.post("/v1/predict", json={}),
        client.get("/readyz"),
    ):
        assert response.headers["X-Model-Name"] == "churn-api"
        assert response.headers["X-Model-Version"] == "7"


def test_model_name_defaults_to_the_registered_name(start: Any, fakes: Any, model: Any) -> None:
    _, client = start(fakes.loader_for(model), model_name=None)
    assert client.get("/readyz").headers["X-Model-Name"] == "churn"


def test_models_endpoint_describes_the_served_version(client: Any) -> None:
    assert client.get("/v1/models").json() == {
        "name": "churn-api",
        "registered_name": "churn",
        "version": "7",
        "uri": "models:/churn@production",
        "ready": True,
    }


def test_healthz_answers_while_the_model_is_still_loading(start: Any, fakes: Any) -> None:
    release = threading.Event()

    def slow_loader() -> Any:
        release.wait(10)
        return fakes.loader_for(fakes.DoublingModel())()

    _, client = start(slow_loader, ready=False)
    assert client.get("/healthz").status_code == 200
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"ready": False, "error": "model not loaded yet"}
    assert response.headers["X-Model-Version"] == "unknown"
    assert client.post("/v1/predict", json={"instances": [1]}).status_code == 503
    release.set()
    fakes.wait_ready(client)
    assert client.post("/v1/predict", json={"instances": [1]}).json() == {"predictions": [2]}


def test_a_load_failure_shows_mlflow_message_on_readyz(start: Any) -> None:
    def failing() -> Any:
        raise RuntimeError("RESOURCE_DOES_NOT_EXIST: Registered model alias production not found.")

    server, client = start(failing, ready=False)
    server.holder.join(5)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "ready": False,
        "error": "load failed: RESOURCE_DOES_NOT_EXIST: Registered model alias production "
        "not found.",
    }
    assert client.get("/healthz").status_code == 200
    assert client.get("/v1/models").json()["ready"] is False


def test_readyz_does_not_echo_internal_addresses(
    start: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # What requests prints when the registry is down: the whole URL, the host.
    def failing() -> Any:
        raise ConnectionError(
            "API request to http://mlflow:5000/api/2.0/mlflow/registered-models/alias failed "
            "with exception HTTPConnectionPool(host='mlflow', port=5000): Max retries exceeded "
            "with url: /api/2.0/mlflow/registered-models/alias?name=churn (Caused by ...)"
        )

    caplog.set_level(logging.INFO)
    server, client = start(failing, ready=False)
    server.holder.join(5)
    error = client.get("/readyz").json()["error"]
    assert error.startswith("load failed: API request to <url> failed")
    for internal in ("mlflow:5000", "host='mlflow'", "/api/2.0"):
        assert internal not in error
        assert internal in caplog.text  # the operator still sees all of it


def test_a_failed_load_is_retried(start: Any, fakes: Any, model: Any) -> None:
    attempts: list[int] = []

    def flaky() -> Any:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("registry not up yet")
        return fakes.loader_for(model)()

    _, client = start(flaky, retry_s=0.01)
    assert client.get("/readyz").json() == {"ready": True}
    assert len(attempts) == 3


def test_the_heap_is_settled_after_the_load_and_before_the_model_is_served(fakes: Any) -> None:
    from swarmai.incontainer.server.state import ModelHolder

    seen: list[object] = []
    holder = ModelHolder(fakes.loader_for(fakes.DoublingModel()),
                         settle=lambda: seen.append(holder.loaded))
    holder.start()
    holder.join(5)
    assert seen == [None]  # settled once, while nothing was served yet
    assert holder.loaded is not None


def test_freeze_heap_exempts_what_is_alive_from_the_collector() -> None:
    import gc

    from swarmai.incontainer.server.state import freeze_heap

    before = gc.get_freeze_count()
    try:
        freeze_heap()
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()  # this pytest process goes on creating and dropping servers


def test_draining_fails_readiness_but_still_answers(start: Any, fakes: Any) -> None:
    # A request that reaches a draining server was sent by a gateway that has
    # not noticed the shutdown yet: refusing it would fail a client's request.
    server, client = start(fakes.loader_for(fakes.DoublingModel()))
    server.begin_drain()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["error"].startswith("draining")
    answer = client.post("/v1/predict", json={"instances": [1]})
    assert answer.status_code == 200, answer.text
    assert client.get("/healthz").status_code == 200


def test_metrics_count_requests_batches_and_load(client: Any) -> None:
    client.post("/v1/predict", json={"instances": [1, 2]})
    client.post("/v1/predict", json={"instances": [3]})
    client.post("/v1/predict", json={"bogus": 1})
    text = client.get("/metrics").text
    assert 'swarmai_requests_total{status="200"} 2.0' in text
    assert 'swarmai_requests_total{status="400"} 1.0' in text
    assert "swarmai_request_latency_seconds_count 3.0" in text
    assert "swarmai_batch_size_count 2.0" in text
    assert "swarmai_batch_size_sum 3.0" in text
    assert "swarmai_model_loaded 1.0" in text
    assert 'swarmai_model_info{registered_name="churn",version="7"} 1.0' in text


@pytest.mark.parametrize(("rate", "logged"), [(0.0, 0), (1.0, 3)])
def test_the_access_log_is_off_unless_asked(
    start: Any, fakes: Any, caplog: pytest.LogCaptureFixture, rate: float, logged: int
) -> None:
    caplog.set_level(logging.INFO, logger="swarmai.access")
    _, client = start(fakes.loader_for(fakes.DoublingModel()), access_log=rate)
    for _ in range(3):
        assert client.post("/v1/predict", json={"instances": [1]}).status_code == 200
        assert client.get("/readyz").status_code == 200  # probes: never logged
    lines = [r.getMessage() for r in caplog.records if r.name == "swarmai.access"]
    assert len(lines) == logged, lines
    assert all(line.startswith("POST /v1/predict 200 ") for line in lines), lines


def test_the_server_imports_no_fastapi_unless_docs_are_asked_for() -> None:
    """FastAPI and pydantic cost about a second of every replica's start-up."""
    code = ("import sys, swarmai.incontainer.server.runner; "
            "print(sorted(m for m in ('fastapi', 'pydantic') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


def test_the_prediction_shortcut_answers_an_escaped_error_with_a_logged_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from swarmai.incontainer.server.asgi import Shortcut

    async def broken(_request: Request) -> Response:
        raise RuntimeError("a bug below the endpoint's own error handling")

    async def other(_request: Request) -> Response:
        return PlainTextResponse("framework")

    app = Shortcut(Starlette(routes=[Route("/other", other), Route("/p", other)]),
                   {("POST", "/p"): broken})
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/p", json={})
        assert response.status_code == 500
        assert response.json() == {"error": "internal server error"}
        assert "a bug below" in caplog.text  # the operator gets the traceback
        # Other methods and paths still go through the framework's routing.
        assert client.get("/p").text == "framework"
        assert client.get("/other").text == "framework"
