"""The worker supervisor's exit code on a stop, with stand-in workers (no model)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

# A supervisor of two workers; each prints "ready" once its stop handler is set,
# after ``HANDLER_AFTER_S`` (a server still importing has none) and exits with
# ``CODE`` on SIGTERM.
SUPERVISE = """
import os, signal, socket, sys, time
from swarmai.incontainer.server.workers import Supervisor

handler_after_s, code = float(sys.argv[1]), int(sys.argv[2])

def serve(sock):
    time.sleep(handler_after_s)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(code))
    os.write(1, b"ready\\n")  # one write: the two workers share the pipe
    while True:
        time.sleep(1)

sock = socket.socket()
print("supervising", flush=True)
sys.exit(Supervisor(2, sock, serve).run())
"""


def _stopped(handler_after_s: float, code: int, *, wait_for: str) -> int:
    process = subprocess.Popen([sys.executable, "-c", SUPERVISE, str(handler_after_s),
                                str(code)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        seen = [process.stdout.readline().strip() for _ in range(1 if wait_for == "supervising"
                                                                  else 3)]
        assert seen[-1] == wait_for, seen
        time.sleep(0.5)  # the workers forked
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=30)
    finally:
        process.kill()


def test_workers_that_drain_cleanly_exit_0() -> None:
    assert _stopped(0, 0, wait_for="ready") == 0


def test_a_worker_that_fails_its_drain_makes_the_exit_code_1() -> None:
    assert _stopped(0, 3, wait_for="ready") == 1


@pytest.mark.parametrize("code", [0, 3])
def test_workers_stopped_before_their_handler_was_set_stopped_as_asked(code: int) -> None:
    # The stop signal's default action ends them: no request was accepted yet.
    assert _stopped(60, code, wait_for="supervising") == 0
