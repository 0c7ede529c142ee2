"""The real MLflow path and the real process: no fakes, no network.

A tiny pyfunc model (doubles its input) is registered in a file-store registry
under tmp, by a subprocess so MLflow's global state never leaks into this
process.  The file store is deprecated in MLflow 3 (hence
MLFLOW_ALLOW_FILE_STORE), but it needs no server and no SQL dependencies,
which mlflow-skinny lacks.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]
import pytest
from fastapi.testclient import TestClient

from swarmai.incontainer.server import ModelServer, Settings, mlflow_loader

MODEL_CODE = """
import mlflow
import pandas as pd  # type: ignore[import-untyped, unused-ignore]
from mlflow.pyfunc import PythonModel


class Doubler(PythonModel):
    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return model_input * 2


mlflow.models.set_model(Doubler())
"""

REGISTER = """
import sys
import mlflow

with mlflow.start_run():
    mlflow.pyfunc.log_model(
        name="model",
        python_model=sys.argv[1],
        registered_model_name="doubler",
        pip_requirements=["mlflow-skinny"],
    )
mlflow.MlflowClient().set_registered_model_alias("doubler", "production", "1")
"""

FILE_STORE = {"MLFLOW_ALLOW_FILE_STORE": "true"}


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A file-store registry holding doubler version 1, aliased production."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = (root / "mlruns").as_uri()
    code = root / "doubler.py"
    code.write_text(MODEL_CODE)
    env = {**os.environ, **FILE_STORE, "MLFLOW_TRACKING_URI": uri}
    subprocess.run(
        [sys.executable, "-c", textwrap.dedent(REGISTER), str(code)],
        env=env, cwd=root, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return uri


@pytest.fixture
def file_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Allow the file store; undo the global tracking URI the loader sets."""
    import mlflow

    for name, value in FILE_STORE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None unsets; typed str upstream


def test_real_loader_resolves_the_alias_and_predicts(
    tracking_uri: str, tmp_path: Path, file_store: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        model_uri="models:/doubler@production", tracking_uri=tracking_uri, cache_dir=str(tmp_path)
    )
    loaded = mlflow_loader(settings)()
    assert (loaded.registered_name, loaded.version) == ("doubler", "1")
    assert (tmp_path / "doubler" / "1" / "MLmodel").is_file()
    assert loaded.model.predict(pd.DataFrame({"x": [1.0, 2.5]}))["x"].tolist() == [2.0, 5.0]

    import mlflow.artifacts

    def no_download(**_: Any) -> str:
        raise AssertionError("the cached version must not be downloaded again")

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", no_download)
    assert mlflow_loader(settings)().version == "1"


def test_real_model_behind_http(tracking_uri: str, tmp_path: Path, file_store: None) -> None:
    settings = Settings(
        model_uri="models:/doubler/1", tracking_uri=tracking_uri, cache_dir=str(tmp_path)
    )
    server = ModelServer(settings, mlflow_loader(settings), max_retry_delay_s=0)
    with TestClient(server.app) as client:
        server.holder.join(60)
        payload = {"dataframe_split": {"columns": ["x"], "data": [[1.0], [3.0]]}}
        response = client.post("/v1/predict", json=payload)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": [{"x": 2.0}, {"x": 6.0}]}
    assert response.headers["X-Model-Name"] == "doubler"
    assert response.headers["X-Model-Version"] == "1"


def test_a_missing_alias_reports_mlflows_error(
    tracking_uri: str, tmp_path: Path, file_store: None
) -> None:
    settings = Settings(
        model_uri="models:/doubler@staging", tracking_uri=tracking_uri, cache_dir=str(tmp_path)
    )
    server = ModelServer(settings, mlflow_loader(settings), max_retry_delay_s=0)
    with TestClient(server.app) as client:
        server.holder.join(60)
        response = client.get("/readyz")
    assert response.status_code == 503
    assert "staging" in response.json()["error"]
    assert "not found" in response.json()["error"]


def test_sigterm_finishes_in_flight_requests_then_exits_zero(
    tracking_uri: str, tmp_path: Path
) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **_server_env(tracking_uri, tmp_path, port),
        # A lone request waits out the whole batching delay: a slow request
        # that is slow inside the batcher, the part a drain must not drop.
        "SWARMAI_MAX_BATCH_SIZE": "64",
        "SWARMAI_MAX_DELAY_MS": "2000",
        "SWARMAI_DRAIN_SECONDS": "20",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "swarmai.incontainer.server"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        _wait_for(f"{base}/readyz", process, timeout=90)
        result: dict[str, Any] = {}
        body = {"dataframe_records": [{"x": 4.0}]}
        slow = threading.Thread(target=_post, args=(f"{base}/v1/predict", body, result))
        slow.start()
        time.sleep(0.7)  # the request is now queued in the batcher
        process.send_signal(signal.SIGTERM)
        slow.join(30)
        exit_code = process.wait(timeout=30)
    finally:
        process.kill()
        output = process.communicate()[0]
    assert result.get("status") == 200, (result, output)
    assert result["body"] == {"predictions": [{"x": 8.0}]}
    assert exit_code == 0, output
    assert "draining" in output


def test_after_sigterm_it_answers_during_the_deregister_window_then_exits(
    tracking_uri: str, tmp_path: Path
) -> None:
    # The gateway polls for removed replicas: requests it sends in that window
    # must be answered, while /readyz already says "draining".
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **_server_env(tracking_uri, tmp_path, port),
        "SWARMAI_DEREGISTER_SECONDS": "3",
        "SWARMAI_DRAIN_SECONDS": "5",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "swarmai.incontainer.server"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        _wait_for(f"{base}/readyz", process, timeout=90)
        process.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        ready: dict[str, Any] = {}
        _get(f"{base}/readyz", ready)
        answered: dict[str, Any] = {}
        _post(f"{base}/v1/predict", {"dataframe_records": [{"x": 1.5}]}, answered)
        exit_code = process.wait(timeout=30)
    finally:
        process.kill()
        output = process.communicate()[0]
    assert ready.get("status") == 503, (ready, output)
    assert answered.get("status") == 200, (answered, output)
    assert answered["body"] == {"predictions": [{"x": 3.0}]}
    assert exit_code == 0, output


def test_workers_share_the_port_sum_their_metrics_and_replace_a_dead_one(
    tracking_uri: str, tmp_path: Path
) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **_server_env(tracking_uri, tmp_path, port),
        "SWARMAI_WORKERS": "2",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "swarmai.incontainer.server"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # the workers share the pipe: stop them all at the end
    )  # fmt: skip
    try:
        _wait_for(f"{base}/readyz", process, timeout=90)
        workers = _children(process.pid)
        assert len(workers) == 2, workers
        _until(lambda: "swarmai_model_loaded 1.0" in _metrics(base), 60)  # in both
        for value in range(20):
            answered: dict[str, Any] = {}
            _post(f"{base}/v1/predict", {"dataframe_records": [{"x": value}]}, answered)
            assert answered["body"] == {"predictions": [{"x": 2 * value}]}, answered
        # Summed over both workers; a worker counts a request just after answering it.
        _until(lambda: 'swarmai_requests_total{status="200"} 20.0' in _metrics(base), 10)

        os.kill(workers[0], signal.SIGKILL)  # a crash: the supervisor starts another
        _until(lambda: len(set(_children(process.pid)) - set(workers)) == 1, 30)
        _until(lambda: "swarmai_model_loaded 1.0" in _metrics(base), 60)
        answered = {}
        _post(f"{base}/v1/predict", {"dataframe_records": [{"x": 1}]}, answered)
        assert answered.get("status") == 200, answered
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=30)
    finally:
        _stop(process)
        output = process.communicate(timeout=30)[0]
    assert exit_code == 0, output
    assert "starting another" in output


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()]


def _metrics(base: str) -> str:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        text: str = response.read().decode()
        return text


def _until(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def _server_env(tracking_uri: str, tmp_path: Path, port: int) -> dict[str, str]:
    """The environment of a real server process on ``port`` serving doubler@production."""
    return {
        **os.environ,
        **FILE_STORE,
        "MODEL_URI": "models:/doubler@production",
        "MLFLOW_TRACKING_URI": tracking_uri,
        "SWARMAI_HOST": "127.0.0.1",
        "PORT": str(port),
        "SWARMAI_MODEL_CACHE": str(tmp_path / "cache"),
    }


def _get(url: str, result: dict[str, Any]) -> None:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            result["status"] = response.status
    except urllib.error.HTTPError as error:
        result["status"] = error.code
    except OSError as error:
        result["error"] = repr(error)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for(url: str, process: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{process.communicate()[0]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.2)
    _stop(process)
    raise AssertionError(f"{url} not ready after {timeout}s:\n{process.communicate()[0]}")


def _stop(process: subprocess.Popen[str]) -> None:
    """Kill the server, and its workers where it leads a session of its own."""
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()


def _post(url: str, body: Any, result: dict[str, Any]) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            result["status"], result["body"] = response.status, json.load(response)
    except urllib.error.HTTPError as error:
        result["status"], result["body"] = error.code, error.read().decode()
    except OSError as error:
        result["error"] = repr(error)
