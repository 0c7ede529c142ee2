"""``swarmai status`` asks each runtime its served version; failure reports find the cause.

A fake gateway answers like each runtime does behind Traefik.  The log digest
is held to a real TorchServe log of a model that failed to load (its worker
retried, burying the cause under Java stack traces and retry lines).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from swarmai.lifecycle.logtext import failure_log_lines
from swarmai.lifecycle.status import served_version
from swarmai.spec import Stack

ANSWERS: dict[str, tuple[int, dict[str, str], Any]] = {
    "/models/tf/v1/models/tf": (200, {}, {"model_version_status": [
        {"version": "3", "state": "AVAILABLE"}, {"version": "2", "state": "END"}]}),
    "/models/ts/predictions/ts": (200, {"X-Model-Version": "7"},
                                  {"name": "ts", "version": "7", "source": "models:/ts/7"}),
    "/models/tsbody/predictions/tsbody": (200, {}, {"name": "tsbody", "version": "4"}),
    "/models/tsother/predictions/tsother": (400, {}, {"error": "a handler of its own"}),
    "/models/api/v1/models": (200, {}, {"name": "api", "version": "5"}),
}


class Gateway(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, headers, body = ANSWERS.get(self.path, (404, {}, {"error": "no route"}))
        data = json.dumps(body).encode()
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _stack(port: int) -> Stack:
    runtimes = {"tf": "tfserving", "ts": "torchserve", "tsbody": "torchserve",
                "tsother": "torchserve", "api": "fastapi", "gone": "tfserving"}
    # Plain HTTP: the in-process gateway above speaks no TLS.
    gateway = {"port": port, "tls": {"mode": "off"}}
    return Stack.model_validate({"version": 1, "name": "s", "gateway": gateway,
                                 "models": [{"name": n, "runtime": r, "model": f"models:/{n}/1"}
                                            for n, r in runtimes.items()]})


def test_each_runtime_is_asked_its_own_way(gateway: int) -> None:
    stack = _stack(gateway)
    versions = {m.name: served_version(stack, m, "127.0.0.1") for m in stack.models}
    assert versions == {"tf": "3", "ts": "7", "tsbody": "4", "tsother": "?", "api": "5",
                        "gone": "?"}


WORKER = "2026-11-23T15:46:55,480 [INFO ] W-9000-lin_1.0-stdout MODEL_LOG - "
FRONTEND = "2026-11-23T15:46:55,490 [DEBUG] W-9000-lin_1.0 org.pytorch.serve.wlm.WorkerThread - "
TORCHSERVE_LOG = "\n".join([
    WORKER + "Backend worker process died.",
    WORKER + "Traceback (most recent call last):",
    WORKER + "    _service.initialize(context)",
    WORKER + "RuntimeError: ",
    WORKER + "Unknown builtin op: x::y.",
    WORKER + "The above exception was the direct cause of the following exception:",
    WORKER + "RuntimeError: model lin version 3 failed to load model.pt: Unknown builtin op.",
    WORKER + "RuntimeError: 500 - Unknown exception",
    FRONTEND + "Backend worker monitoring thread interrupted or backend worker process died.",
    "java.lang.InterruptedException: null",
    *["\tat org.pytorch.serve.wlm.Model.pollBatch(Model.java:478) ~[model-server.jar:?]"] * 7,
    FRONTEND + "W-9000-lin_1.0 State change WORKER_ERROR -> WORKER_STOPPED",
    FRONTEND + "Auto recovery failed again",
    FRONTEND + "Retry worker: 9000 in 13 seconds.",
    FRONTEND + "Stopped Scanner - W-9000-lin_1.0-stderr",
]) + "\n"


def test_a_retrying_servers_cause_is_found_above_its_last_lines() -> None:
    log = TORCHSERVE_LOG.replace("15:46:55", "15:46:41") + TORCHSERVE_LOG  # two attempts
    assert "failed to load" not in "\n".join(log.splitlines()[-12:])
    shown = failure_log_lines(log)
    text = "\n".join(shown)
    assert "RuntimeError: model lin version 3 failed to load model.pt: Unknown builtin op" in text
    # An open-ended "RuntimeError: " keeps the line that carries its message.
    opened = next(i for i, line in enumerate(shown) if line.endswith("RuntimeError:"))
    assert shown[opened + 1].endswith("Unknown builtin op: x::y.")
    assert text.count("failed to load") == 1  # one line per distinct error, the latest
    assert "15:46:55" in text.split("failed to load")[0].rsplit("\n", 1)[-1]
    assert shown[-12:] == [line.rstrip() for line in log.splitlines()[-12:]]
    assert shown[-13] == "..."


def test_a_short_log_is_shown_whole() -> None:
    assert failure_log_lines("one\ntwo\n") == ["one", "two"]
    assert failure_log_lines("") == []
