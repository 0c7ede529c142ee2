"""Dynamic batching: coalesce concurrent requests into one ``predict`` call.

One worker task owns the model.  It takes the oldest waiting request, then
keeps taking requests for up to ``max_delay`` seconds while their rows still
fit in ``max_batch_size`` and they are compatible (same columns/dtypes or
trailing shape, same params).  The first request that does not fit closes the
batch and opens the next one, so order is kept.  A single request larger than
``max_batch_size`` runs alone rather than being refused.

The model runs in a thread (``asyncio.to_thread``) so the event loop keeps
accepting requests and answering probes while it computes.  Only one
``predict`` runs at a time: models are rarely thread-safe, and on a GPU
parallel calls only contend.

The queue is bounded (``max_queue``): a full one refuses at once with
:class:`Overloaded` rather than growing until the process runs out of memory.
``running_for`` tells how long the current model call has run, so readiness
can fail while the model is stuck.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from swarmai.incontainer.server.outputs import OutputError, split_predictions
from swarmai.incontainer.server.payload import ModelInput
from swarmai.incontainer.server.tables import model_data

log = logging.getLogger(__name__)

# Runs the model: (combined data, params) -> output with one entry per row.
PredictFn = Callable[[Any, dict[str, Any] | None], Any]
# Combines a batch's request data into what PredictFn gets: (parts, params) -> data.
PrepareFn = Callable[[list[Any], dict[str, Any] | None], Any]


def combine(parts: list[Any], params: dict[str, Any] | None) -> Any:
    """The default PrepareFn: the rows as one DataFrame or array (tables.model_data)."""
    return model_data(parts)


class Overloaded(RuntimeError):
    """The queue is full; the request was not queued."""


class ShuttingDown(RuntimeError):
    """The server stopped before the request was answered."""


@dataclass(eq=False)
class _Pending:
    item: ModelInput
    future: asyncio.Future[Any]


class Batcher:
    """Queue requests and feed them to ``predict`` in batches."""

    def __init__(
        self,
        predict: PredictFn,
        max_batch_size: int = 1,
        max_delay_s: float = 0.0,
        on_batch: Callable[[int], None] | None = None,
        max_queue: int = 64,
        prepare: PrepareFn = combine,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self._predict = predict
        self._prepare = prepare
        self.max_batch_size = max_batch_size
        self.max_delay_s = max(0.0, max_delay_s)
        self._on_batch = on_batch
        # Requests that timed out stay queued until the worker skips them, so
        # this also bounds what a stuck model accumulates.
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=max(1, max_queue))
        self._held: _Pending | None = None  # took it, but it did not fit the last batch
        # The batch being collected or computed: out of the queue, not yet answered.
        self._batch: list[_Pending] = []
        self._worker: asyncio.Task[None] | None = None
        self._busy_since: float | None = None  # time.monotonic() when predict began

    def running_for(self) -> float | None:
        """Seconds the current model call has run, ``None`` when the model is idle."""
        since = self._busy_since
        return None if since is None else time.monotonic() - since

    def start(self) -> None:
        """Start the worker on the running event loop."""
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run(), name="batcher")

    async def stop(self) -> None:
        """Stop the worker; requests still queued fail (the server is going away)."""
        # Taken before cancelling: the worker forgets its batch as it unwinds.
        leftovers = [*self._batch, *([self._held] if self._held else [])]
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        while not self._queue.empty():
            leftovers.append(self._queue.get_nowait())
        for pending in leftovers:
            _settle(pending, error=ShuttingDown("server is shutting down"))

    async def submit(self, item: ModelInput) -> Any:
        """Queue ``item`` and wait for its share of the predictions.

        Raises :class:`Overloaded` at once when the queue is full; cancelling
        the wait (a timeout) leaves the item to be skipped, not computed.
        """
        if self._worker is None:
            raise ShuttingDown("batcher is not running")
        pending = _Pending(item, asyncio.get_running_loop().create_future())
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            raise Overloaded(f"{self._queue.maxsize} requests are queued already") from None
        return await pending.future

    async def _run(self) -> None:
        while True:
            await self._collect()
            try:
                await self._compute(self._batch)
            finally:
                self._batch = []

    async def _compute(self, collected: list[_Pending]) -> None:
        # Requests whose caller already gave up are not worth computing.
        batch = [p for p in collected if not p.future.done()]
        if not batch:
            return
        # No logging here: whether a failure is the client's input or a server
        # fault is the HTTP layer's call, and only the latter earns a traceback.
        self._busy_since = time.monotonic()
        try:
            outputs = await asyncio.to_thread(self._predict_batch, [p.item for p in batch])
        except Exception as error:
            for pending in batch:
                _settle(pending, error=error)
            return
        finally:
            self._busy_since = None
        for pending, output in zip(batch, outputs, strict=True):
            _settle(pending, result=output)

    async def _collect(self) -> None:
        """Fill ``self._batch``; kept on self so ``stop`` can answer its requests."""
        first = self._held or await self._queue.get()
        self._held = None
        self._batch, rows = [first], first.item.rows
        deadline = asyncio.get_running_loop().time() + self.max_delay_s
        while rows < self.max_batch_size:
            nxt = await self._next_before(deadline)
            if nxt is None:
                break
            if nxt.item.key != first.item.key or rows + nxt.item.rows > self.max_batch_size:
                self._held = nxt
                break
            self._batch.append(nxt)
            rows += nxt.item.rows

    async def _next_before(self, deadline: float) -> _Pending | None:
        # Past the deadline we still take what is already queued: free batching.
        if not self._queue.empty():
            return self._queue.get_nowait()
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return None
        try:
            return await asyncio.wait_for(self._queue.get(), remaining)
        except TimeoutError:
            return None

    def _predict_batch(self, items: list[ModelInput]) -> list[Any]:
        """Runs in a worker thread: one model call for the whole batch."""
        rows = sum(item.rows for item in items)
        if self._on_batch is not None:
            self._on_batch(rows)
        if len(items) == 1:
            # Nothing to split: any output shape the model returns is fine.
            return [self._call([items[0]])]
        output = self._call(items)
        try:
            return split_predictions(output, [item.rows for item in items])
        except OutputError as error:
            # Batching is on by default, and this model's output is not one
            # entry per row: answer each request alone, now and from now on.
            log.warning("batching turned off: %s; each request runs alone", error)
            self.max_batch_size = 1
            return [self._call([item]) for item in items]

    def _call(self, items: list[ModelInput]) -> Any:
        # Items of one batch share their params (the batching key holds them).
        params = items[0].params
        return self._predict(self._prepare([item.data for item in items], params), params)


def _settle(pending: _Pending, *, result: Any = None, error: BaseException | None = None) -> None:
    # The caller may have gone (client disconnected, handler cancelled).
    if pending.future.done():
        return
    if error is not None:
        pending.future.set_exception(error)
    else:
        pending.future.set_result(result)
