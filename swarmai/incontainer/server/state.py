"""The model's lifecycle: loading in the background, ready, failed, draining.

Loading runs in a daemon thread so ``/healthz`` answers from the first second
(a large download must not make Docker think the container is dead) and so a
hung download never blocks shutdown.  A failed load is retried with capped
backoff: in a fresh stack the registry often starts after the model servers.
The last error stays visible meanwhile: whole in the log, and on ``/readyz``
shortened and with addresses blanked, since that endpoint answers anyone who
can reach the replica and the registry's internal URLs are none of their business.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable

from swarmai.incontainer.server.loader import LoadedModel, ModelLoader
from swarmai.incontainer.server.messages import public_reason

log = logging.getLogger(__name__)

NOT_LOADED = "model not loaded yet"


class ModelHolder:
    """Owns the loaded model and says whether the server may take traffic."""

    def __init__(
        self,
        loader: ModelLoader,
        *,
        max_retry_delay_s: float = 30.0,
        on_loaded: Callable[[LoadedModel], None] | None = None,
        settle: Callable[[], None] | None = None,
    ) -> None:
        self._loader = loader
        # Runs after a load, before the model is served: freeze_heap in the server.
        self._settle = settle
        self._max_retry_delay_s = max_retry_delay_s
        self._on_loaded = on_loaded
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Written by the loader thread, read by the event loop; each is one
        # reference assignment, so readers never see a half-updated value.
        self.loaded: LoadedModel | None = None
        self.error: str | None = None
        self.draining = False

    def start(self) -> None:
        """Begin loading in the background; returns at once."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._load_loop, name="model-loader", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Abandon retries (an attempt in progress finishes on its own)."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the loader thread; for tests and orderly shutdown."""
        if self._thread is not None:
            self._thread.join(timeout)

    def begin_drain(self) -> None:
        """From now on, report not-ready (predictions are still served: see runner)."""
        self.draining = True

    def not_ready_reason(self) -> str | None:
        """``None`` when the replica should receive traffic, else why not."""
        if self.draining:
            return "draining: the server is shutting down"
        return self.not_serving_reason()

    def not_serving_reason(self) -> str | None:
        """``None`` when predictions can be answered, else why not.

        A draining server still answers: a request that reaches it was sent by
        a gateway that has not noticed the shutdown yet, and refusing it would
        be a failed request for the client.
        """
        if self.loaded is not None:
            return None
        if self.error is not None:
            return self.error
        return NOT_LOADED

    def _load_loop(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            attempt += 1
            try:
                loaded = self._loader()
            except Exception as error:
                self.error = f"load failed: {public_reason(error)}"
                delay = min(self._max_retry_delay_s, 2.0 ** (attempt - 1))
                # The traceback once; a registry that stays down would flood the log.
                log.error("loading the model failed (attempt %d): %s", attempt,
                          error or type(error).__name__, exc_info=attempt == 1)
                if self._max_retry_delay_s <= 0:
                    return
                log.info("retrying the model load in %.0f s", delay)
                self._stop.wait(delay)
                continue
            if self._settle is not None:
                self._settle()
            self.loaded, self.error = loaded, None
            if self._on_loaded is not None:
                self._on_loaded(loaded)
            return


def freeze_heap() -> None:
    """Exempt everything alive now (libraries, the model) from the cyclic GC.

    Those objects live as long as the process, but each full collection walks
    all of them: with MLflow, pandas and scikit-learn loaded that was a pause
    of 120-160 ms about once a second under load, every request in flight
    waiting it out (the server's p99 was 6x its p50; bench/server.py).  Frozen,
    they are skipped; reference counting still frees what is dropped, and
    requests' own garbage is collected as before.  The model is loaded once
    per process, so nothing that is frozen is ever meant to go away.
    """
    gc.collect()
    gc.freeze()
