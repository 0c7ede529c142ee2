"""The loop and the process: --once exit codes, polling, SIGTERM, config errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from swarmai.incontainer.sync import MARKER, SyncSettings
from swarmai.incontainer.sync.runner import Dependencies, run

MakeSettings = Callable[..., SyncSettings]


@pytest.fixture
def served(registry: Any, saved_model: Callable[..., Path]) -> Any:
    registry.add("iris", "1", saved_model(), alias="production")
    return registry


def _deps(registry: Any) -> Dependencies:
    return Dependencies(registry, registry.download)


def _sigterm_after(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    return timer


def test_once_exits_zero_when_synced_and_one_when_not(served: Any,
                                                      settings: MakeSettings) -> None:
    assert run(settings(), _deps(served), once=True) == 0
    assert (Path(settings().store) / MARKER).is_file()
    assert run(settings(model_uri="models:/iris@nope"), _deps(served), once=True) == 1


def test_the_loop_polls_until_sigterm_then_exits_zero(served: Any, settings: MakeSettings,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    config = settings(poll_seconds=0.05)
    served.down = True  # failures are retried, not fatal
    timer = threading.Timer(0.3, setattr, (served, "down", False))
    timer.start()
    _sigterm_after(0.8)
    caplog.set_level("INFO")
    started = time.monotonic()
    assert run(config, _deps(served)) == 0
    assert time.monotonic() - started < 5
    assert (Path(config.store) / "iris" / "1" / "saved_model.pb").is_file()
    assert "Connection refused" in caplog.text
    assert "received SIGTERM" in caplog.text
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored


def test_sigterm_during_a_pass_publishes_nothing(served: Any, settings: MakeSettings) -> None:
    config = settings(poll_seconds=60)

    def slow_download(artifact_uri: str, dst_path: str) -> str:
        time.sleep(5)
        return str(served.download(artifact_uri, dst_path))

    _sigterm_after(0.3)
    started = time.monotonic()
    assert run(config, Dependencies(served, slow_download)) == 0
    assert time.monotonic() - started < 4
    assert not (Path(config.store) / MARKER).exists()
    assert not (Path(config.store) / "iris").exists()


def test_a_crashing_pass_is_logged_and_retried(served: Any, settings: MakeSettings,
                                               caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    def buggy(artifact_uri: str, dst_path: str) -> str:
        calls.append(artifact_uri)
        if len(calls) == 1:
            raise SystemError("a bug")  # SyncError-wrapped like any download failure
        return str(served.download(artifact_uri, dst_path))

    _sigterm_after(0.6)
    assert run(settings(poll_seconds=0.05), Dependencies(served, buggy)) == 0
    assert len(calls) == 2
    assert "download of models:/iris/1 failed: a bug" in caplog.text


def test_the_module_reports_a_config_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MODEL_URI", "SWARMAI_LAYOUT")}
    done = subprocess.run([sys.executable, "-m", "swarmai.incontainer.sync", "--once"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "MODEL_URI is not set" in done.stderr


def test_the_process_retries_a_missing_registry_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MLFLOW_ALLOW_FILE_STORE": "true",
        "MLFLOW_TRACKING_URI": (tmp_path / "mlruns").as_uri(),
        "MODEL_URI": "models:/iris@production",
        "SWARMAI_LAYOUT": "tfserving",
        "SWARMAI_STORE": str(tmp_path / "store"),
        "SWARMAI_MODEL_CACHE": str(tmp_path / "cache"),
        "SWARMAI_POLL_SECONDS": "0.2",
    }
    process = subprocess.Popen([sys.executable, "-m", "swarmai.incontainer.sync"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output = _read_until(process, "sync of models:/iris@production failed", timeout=60)
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=30)
    finally:
        process.kill()
        output += process.communicate()[0]
    assert exit_code == 0, output
    assert "stopping" in output or "stopped during a pass" in output
    assert not (tmp_path / "store" / MARKER).exists()


def _read_until(process: subprocess.Popen[str], text: str, timeout: float) -> str:
    assert process.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while text not in seen:
        line = process.stdout.readline()
        if not line or time.monotonic() > deadline:
            raise AssertionError(f"never logged {text!r}:\n{seen}")
        seen += line
    return seen
