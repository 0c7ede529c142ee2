"""A bounded load generator: N clients POSTing one prediction after another.

Used by the promotion e2e tests (tests/e2e/test_promotion.py) and by
bench/rollout.py: every request is recorded (start, end, status, the
X-Model-Version that answered, or the connection error), so a rollout can be
judged request by request.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Outcome:
    started: float  # time.monotonic()
    ended: float
    status: int | None  # None: no HTTP answer at all
    version: str | None
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.status is None or not 200 <= self.status < 300


@dataclass
class Load:
    """``with Load(url, payload) as load: ...``: clients run for the whole block."""

    url: str
    payload: dict[str, Any]
    clients: int = 4
    timeout_s: float = 30.0
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Load:
        for index in range(self.clients):
            thread = threading.Thread(target=self._client, name=f"load-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout_s + 5)

    def _client(self) -> None:
        body = json.dumps(self.payload).encode()
        while not self._stop.is_set():
            outcome = send(self.url, body, self.timeout_s)
            with self._lock:
                self.outcomes.append(outcome)

    def summary(self, since: float | None = None) -> dict[str, Any]:
        """Counts, failures, latencies and versions of the requests started after ``since``."""
        with self._lock:
            chosen = [o for o in self.outcomes if since is None or o.started >= since]
        return summarize(chosen)


def send(url: str, body: bytes, timeout_s: float) -> Outcome:
    """One POST; never raises."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            response.read()
            return Outcome(started, time.monotonic(), response.status,
                           response.headers.get("X-Model-Version"))
    except urllib.error.HTTPError as error:
        detail = error.read()[:200].decode("utf-8", "replace")
        return Outcome(started, time.monotonic(), error.code,
                       error.headers.get("X-Model-Version"), detail)
    except OSError as error:  # refused, reset, timed out
        return Outcome(started, time.monotonic(), None, None, repr(error))


def summarize(outcomes: list[Outcome]) -> dict[str, Any]:
    latencies = sorted(o.ended - o.started for o in outcomes)
    failed = [o for o in outcomes if o.failed]
    return {
        "requests": len(outcomes),
        "failed": len(failed),
        "failures": Counter(f"{o.status}: {(o.error or '')[:80]}" for o in failed).most_common(5),
        "versions": dict(Counter(o.version for o in outcomes if not o.failed)),
        "p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(1000 * _percentile(latencies, 0.99), 1) if latencies else None,
    }


def _percentile(ordered: list[float], fraction: float) -> float:
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]
