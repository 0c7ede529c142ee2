"""The TF Serving stand-in understands exactly what swarmai renders (no TensorFlow needed).

The stand-in itself is exercised with real TensorFlow by tests/e2e/test_runtimes.py;
here its command line and config parsing are held to the rendered service.
"""

from __future__ import annotations

import json
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from swarmai.render import runtimes
from swarmai.spec import Stack

sys.path.insert(0, str(Path(__file__).resolve().parent))
import standin


def _stack(batching: bool) -> Stack:
    model: dict[str, Any] = {"name": "dense", "runtime": "tfserving",
                             "model": "models:/dense@production"}
    if batching:
        model["batching"] = {"max_batch_size": 8, "max_delay_ms": 3}
    return Stack.model_validate({"version": 1, "name": "s", "models": [model]})


@pytest.mark.parametrize("batching", [False, True])
def test_the_rendered_command_line_is_accepted_whole(batching: bool) -> None:
    stack = _stack(batching)
    command = runtimes.model_services(stack, stack.models[0])[1].command
    assert command is not None
    args, unknown = standin.parse_args(list(command))
    assert unknown == []
    assert (args.port, args.rest_api_port, args.file_system_poll_wait_seconds) == (8500, 8501, 1)
    assert args.model_config_file == "/etc/swarmai/dense/models.config"
    assert args.enable_batching is batching


def test_the_official_entrypoints_flags_and_unknown_ones_are_tolerated() -> None:
    args, unknown = standin.parse_args([
        "--port=8500", "--rest_api_port=8501", "--model_name=model",
        "--model_base_path=/models/model", "--enable_batching", "--rest_api_num_threads=8",
    ])
    assert (args.model_name, args.enable_batching) == ("model", True)
    assert unknown == ["--rest_api_num_threads=8"]


def test_the_rendered_model_config_names_the_model_and_its_base_path() -> None:
    text = runtimes.tfserving_model_config(_stack(False).models[0])
    assert standin.parse_model_config(text) == [standin.ModelConfig("dense", "/models/dense")]


def test_several_models_and_double_quotes() -> None:
    text = """model_config_list {
      config { name: "a" base_path: "/models/a" model_platform: "tensorflow" }
      config { base_path: '/m/b' name: 'b' }
    }"""
    assert standin.parse_model_config(text) == [
        standin.ModelConfig("a", "/models/a"), standin.ModelConfig("b", "/m/b")]
    with pytest.raises(ValueError, match="lacks name or base_path"):
        standin.parse_model_config("model_config_list { config { name: 'x' } }")


def test_the_rendered_monitoring_config_gives_the_metrics_path() -> None:
    files = runtimes.runtime_files(_stack(False).models[0])
    text = files["runtimes/dense/monitoring.config"]
    assert standin.parse_monitoring_path(text) == "/monitoring/prometheus/metrics"
    assert standin.parse_monitoring_path("prometheus_config { enable: false }") is None


def test_the_newest_complete_version_folder_wins(tmp_path: Path) -> None:
    for name in ("1", "3", "10", ".tmp-11", "notes"):
        (tmp_path / name).mkdir()
    for name in ("1", "3", ".tmp-11"):
        (tmp_path / name / "saved_model.pb").write_bytes(b"")
    (tmp_path / "10" / "variables").mkdir()  # no saved_model.pb yet
    assert standin.newest_version(tmp_path) == 3
    assert standin.newest_version(tmp_path / "missing") is None


class FakeLoaded:
    """Stands in for a loaded SavedModel in the HTTP tests (no TensorFlow)."""


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Any]]:
    """The stand-in's HTTP server on a free port; its model is polled by hand."""
    monkeypatch.setattr(standin, "load_saved_model", lambda path: FakeLoaded())
    monkeypatch.setattr(standin, "predict",
                        lambda loaded, body: {"predictions": [len(body["instances"])]})
    model = standin.ServedModel(standin.ModelConfig("dense", str(tmp_path)))
    http = standin.Server(0, {"dense": model}, "/metrics")
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_address[1]}", model
    finally:
        http.shutdown()
        http.server_close()


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def _post(url: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_status_and_predict_follow_the_version_folders(server: tuple[str, Any]) -> None:
    url, served = server
    base = Path(served.config.base_path)
    status, body = _get(f"{url}/v1/models/dense")
    assert status == 404 and "Could not find any versions" in body["error"]
    assert _post(f"{url}/v1/models/dense:predict", {"instances": [1]})[0] == 404

    (base / "1").mkdir()
    (base / "1" / "saved_model.pb").write_bytes(b"")
    served.poll()
    assert _get(f"{url}/v1/models/dense") == (200, {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK",
                                                          "error_message": ""}}]})
    assert _post(f"{url}/v1/models/dense:predict", {"instances": [1, 2]}) == \
        (200, {"predictions": [2]})
    (base / "2").mkdir()
    (base / "2" / "saved_model.pb").write_bytes(b"")
    served.poll()
    states = {s["version"]: s["state"] for s in _get(f"{url}/v1/models/dense")[1][
        "model_version_status"]}
    assert states == {"2": "AVAILABLE", "1": "END"}
    assert _post(f"{url}/v1/models/dense/versions/1:predict", {"instances": [1]})[0] == 404
    assert _post(f"{url}/v1/models/other:predict", {"instances": [1]})[0] == 404
    assert _post(f"{url}/v1/models/dense:classify", {"examples": []})[0] == 404
