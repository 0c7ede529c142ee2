"""Run a :class:`ModelServer` under uvicorn, with a graceful drain on SIGTERM.

Docker stops a task with SIGTERM, then SIGKILL after the stop grace period.
On SIGTERM we first flip readiness (``/readyz`` answers 503 "draining") but keep
accepting and answering requests for ``SWARMAI_DEREGISTER_SECONDS``: the
gateway learns of the shutdown by polling, and a request it sends meanwhile
must not fail.  Then uvicorn does its graceful shutdown: close the listening
socket, wait up to ``SWARMAI_DRAIN_SECONDS`` for in-flight requests (batched
ones included: the batcher keeps running until the lifespan ends), then run
the lifespan shutdown.  A second signal stops at once.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from types import FrameType

import uvicorn

from swarmai.incontainer.server.app import ModelServer
from swarmai.incontainer.server.config import Settings
from swarmai.incontainer.server.loader import ModelLoader, mlflow_loader
from swarmai.incontainer.server.whole_writes import WholeResponses
from swarmai.incontainer.server.workers import Supervisor, bind

log = logging.getLogger(__name__)


class _DrainingServer(uvicorn.Server):
    """uvicorn's server, telling the app to drain before it stops accepting."""

    def __init__(self, config: uvicorn.Config, model_server: ModelServer,
                 deregister_seconds: float) -> None:
        super().__init__(config)
        self._model_server = model_server
        self._deregister_seconds = deregister_seconds
        self._exit_timer: threading.Timer | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._exit_timer is None and self._deregister_seconds > 0:
            self._model_server.begin_drain()
            log.info("still accepting for %.1f s so the gateway deregisters this replica",
                     self._deregister_seconds)
            # uvicorn's main loop polls should_exit; setting it from a timer
            # thread is how its own handler works too.
            self._exit_timer = threading.Timer(
                self._deregister_seconds, super().handle_exit, (sig, frame))
            self._exit_timer.daemon = True
            self._exit_timer.start()
            return
        if not self.should_exit:
            self._model_server.begin_drain()
        super().handle_exit(sig, frame)


def serve(settings: Settings, loader: ModelLoader | None = None) -> int:
    """Serve until SIGTERM/SIGINT, in ``settings.workers`` processes; the exit code."""
    if settings.workers == 1:
        return _serve_one(settings, loader, None)
    sock = bind(settings.host, settings.port)
    log.info("serving on %s:%d with %d workers", settings.host, settings.port, settings.workers)
    return Supervisor(settings.workers, sock,
                      lambda shared: _serve_one(settings, loader, [shared])).run()


def _serve_one(settings: Settings, loader: ModelLoader | None,
               sockets: list[socket.socket] | None) -> int:
    """One server process: on its own port, or on ``sockets`` bound by the parent."""
    model_server = ModelServer(settings, loader or mlflow_loader(settings),
                               freeze_after_load=True)
    config = uvicorn.Config(
        model_server.app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=settings.drain_seconds,
        lifespan="on",
        access_log=False,  # the app writes its own, sampled (SWARMAI_ACCESS_LOG)
        http=WholeResponses,  # a crash never cuts a response in two
    )
    server = _DrainingServer(config, model_server, settings.deregister_seconds)
    # After its graceful shutdown uvicorn re-raises the signal it caught, to
    # the handler that was installed before it; without this one the default
    # action would kill us with 143 although the drain went fine.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _drained)
    server.run(sockets)
    return 0 if server.started else 1


def _drained(signum: int, _frame: FrameType | None) -> None:
    log.info("stopped after %s", signal.Signals(signum).name)
