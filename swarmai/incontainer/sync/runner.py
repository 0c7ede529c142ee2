"""The sync loop: a pass every poll interval until SIGTERM, or one pass with --once.

MLflow is imported here, lazily, only when the real client and downloader are
built, so the rest of the package (and its tests) never need it.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from swarmai.incontainer.server.loader import Downloader
from swarmai.incontainer.sync.archiver import Archiver
from swarmai.incontainer.sync.config import SyncSettings
from swarmai.incontainer.sync.core import SyncResult, sync_once

log = logging.getLogger("swarmai.incontainer.sync")


@dataclass(frozen=True)
class Dependencies:
    """What a pass talks to; :func:`mlflow_dependencies` builds the real ones."""

    client: Any
    downloader: Downloader
    archiver: Archiver | None = None


class _Stopped(BaseException):
    """SIGTERM arrived in the middle of a pass (a BaseException: no handler swallows it)."""


def mlflow_dependencies(settings: SyncSettings) -> Dependencies:
    """The real MLflow client and artifact downloader for ``settings.tracking_uri``."""
    import mlflow
    import mlflow.artifacts
    from mlflow import MlflowClient

    tracking = settings.tracking_uri
    if tracking:
        # models:/ downloads resolve through the *global* registry URI, ignoring
        # download_artifacts' tracking_uri; this process syncs one model.
        mlflow.set_tracking_uri(tracking)

    def download(artifact_uri: str, dst_path: str) -> str:
        return str(mlflow.artifacts.download_artifacts(
            artifact_uri=artifact_uri, dst_path=dst_path, tracking_uri=tracking
        ))  # fmt: skip

    return Dependencies(MlflowClient(tracking_uri=tracking), download)


def run(settings: SyncSettings, deps: Dependencies, *, once: bool = False) -> int:
    """Sync until stopped; return the process exit code (0 clean, 1 failed --once)."""
    stop = threading.Event()
    busy = threading.Event()
    restore = _on_stop_signals(stop, busy)
    log.info("syncing %s into %s (%s layout)%s", settings.model_uri, settings.store,
             settings.layout, "" if once else f", every {settings.poll_seconds:g}s")
    try:
        return _loop(settings, deps, once, stop, busy)
    except _Stopped:
        log.info("stopped during a pass; its unfinished work is discarded, nothing published")
        return 1 if once else 0
    finally:
        restore()


def _loop(settings: SyncSettings, deps: Dependencies, once: bool, stop: threading.Event,
          busy: threading.Event) -> int:
    last: SyncResult | None = None
    while True:
        busy.set()
        result = _pass(settings, deps)
        busy.clear()
        if once:
            return 0 if result.ok else 1
        _report(result, last)
        last = result
        if stop.wait(settings.poll_seconds):
            log.info("stopping")
            return 0


def _pass(settings: SyncSettings, deps: Dependencies) -> SyncResult:
    try:
        return sync_once(deps.client, settings, deps.downloader, deps.archiver)
    except Exception as error:  # a bug, not a registry problem: keep serving, say so
        log.exception("sync pass crashed; retrying in %gs", settings.poll_seconds)
        return SyncResult(settings.model_uri, error=f"{type(error).__name__}: {error}")


def _report(result: SyncResult, last: SyncResult | None) -> None:
    """One line when the state settles: the first pass, or the first after a change."""
    if result.ok and not result.changed and (last is None or not last.ok):
        log.info("%s is version %s, laid out at %s", result.uri, result.version, result.path)


def _on_stop_signals(stop: threading.Event, busy: threading.Event) -> Callable[[], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        del frame
        log.info("received %s", signal.Signals(signum).name)
        stop.set()
        if busy.is_set():
            raise _Stopped

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
