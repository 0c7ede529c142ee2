"""Several server processes on one port, so a replica uses every CPU it is given.

The parent binds the port, then forks the workers, which accept on the shared
socket (the kernel hands each connection to one of them).  Each worker is a
whole server: its own model, batcher, queue limit and drain.  The parent:

- passes SIGTERM and SIGINT on, so every worker drains as a single server does,
  and exits once all of them have;
- starts a worker again when one dies (a crash costs that worker's in-flight
  requests, which the gateway retries on another), waiting longer each time one
  dies young, so a worker that cannot start does not spin;
- keeps the metrics one: prometheus_client's multiprocess mode sums what the
  workers count in files under ``SWARMAI_METRICS_DIR`` (set up by
  :func:`prepare_metrics` before prometheus_client is imported), and a dead
  worker's live gauges are dropped.

Forked, not spawned: the workers share the parent's imports (copy-on-write),
which makes their start cheaper.  The parent starts no thread before forking.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)

# prometheus_client reads this variable when it is imported.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_YOUNG_S = 10.0  # a worker dying sooner than this after its start delays the next
_MAX_DELAY_S = 30.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def prepare_metrics(workers: int) -> None:
    """Point prometheus_client at a fresh directory when there are several workers.

    Call before anything imports prometheus_client.
    """
    if workers > 1:
        os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="swarmai-metrics-")


def bind(host: str, port: int) -> socket.socket:
    """The listening socket every worker accepts on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class Supervisor:
    """Fork ``count`` workers running ``serve(sock)`` and keep them running."""

    def __init__(self, count: int, sock: socket.socket,
                 serve: Callable[[socket.socket], int]) -> None:
        self._count = count
        self._sock = sock
        self._serve = serve
        self._children: dict[int, float] = {}  # pid -> when it started
        self._stopping: signal.Signals | None = None
        self._delay_s = 0.0

    def run(self) -> int:
        """Until a signal stopped every worker; the exit code (0: all drained)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        for _ in range(self._count):
            self._fork()
        failed = False
        while self._children:
            pid, status = os.wait()
            started = self._children.pop(pid, None)
            if started is None:
                continue
            _mark_dead(pid)
            code = os.waitstatus_to_exitcode(status)
            if self._stopping is not None:
                # Killed by the very signal passed on: a worker still starting
                # (no handler yet, so it had accepted no request) stopped as asked.
                failed = failed or code not in (0, -self._stopping)
                continue
            log.error("worker %d exited with %d; starting another", pid, code)
            self._back_off(time.monotonic() - started)
            if self._stopping is None:
                self._fork()
        return 1 if failed else 0

    def _fork(self) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            _die_with(parent)
            code = 1
            try:
                code = self._serve(self._sock)
            finally:
                os._exit(code)
        self._children[pid] = time.monotonic()

    def _back_off(self, lived_s: float) -> None:
        young = lived_s < _YOUNG_S
        self._delay_s = min(_MAX_DELAY_S, self._delay_s * 2 or 1.0) if young else 0.0
        if self._delay_s:
            time.sleep(self._delay_s)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stopping = signal.Signals(signum)
        log.info("%s: stopping %d workers", self._stopping.name, len(self._children))
        for pid in self._children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)


def _die_with(parent: int) -> None:
    """Have the kernel stop this worker when its parent dies.  In a container
    the end of PID 1 ends them all; on a host (the bench, a test) a parent
    killed with SIGKILL would otherwise leave its workers serving on."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)


def _mark_dead(pid: int) -> None:
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
