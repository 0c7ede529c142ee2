"""Dynamic batching: concurrent requests share model calls, results map back."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]
import pytest

from swarmai.incontainer.server.batching import Batcher, Overloaded, ShuttingDown
from swarmai.incontainer.server.outputs import split_predictions
from swarmai.incontainer.server.payload import ModelInput, parse_payload


def run_batcher(
    predict: Callable[[Any, Any], Any],
    scenario: Callable[[Batcher], Awaitable[Any]],
    *,
    max_batch_size: int,
    max_delay_s: float = 0.05,
) -> Any:
    async def main() -> Any:
        batcher = Batcher(predict, max_batch_size=max_batch_size, max_delay_s=max_delay_s)
        batcher.start()
        try:
            return await scenario(batcher)
        finally:
            await batcher.stop()

    return asyncio.run(main())


def rows(*values: int) -> ModelInput:
    return parse_payload({"instances": list(values)})


def test_concurrent_http_requests_are_coalesced(start: Any, fakes: Any) -> None:
    model = fakes.DoublingModel(delay_s=0.05)
    _, client = start(fakes.loader_for(model), max_batch_size=4, max_delay_ms=50)

    def post(i: int) -> Any:
        return client.post("/v1/predict", json={"dataframe_records": [{"x": i}]})

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(post, range(8)))
    assert [r.json() for r in responses] == [{"predictions": [2 * i]} for i in range(8)]
    assert sum(model.batches) == 8
    assert max(model.batches) <= 4
    assert len(model.batches) < 8


def test_multi_row_requests_split_back_in_order() -> None:
    calls: list[int] = []

    def predict(data: Any, params: Any) -> Any:
        calls.append(len(data))
        return data * 10

    async def scenario(batcher: Batcher) -> Any:
        return await asyncio.gather(
            batcher.submit(rows(1, 2)), batcher.submit(rows(3)), batcher.submit(rows(4, 5, 6))
        )

    results = run_batcher(predict, scenario, max_batch_size=6)
    assert [r.tolist() for r in results] == [[10, 20], [30], [40, 50, 60]]
    assert calls == [6]


def test_a_batch_never_exceeds_the_size_but_an_oversized_request_runs_alone() -> None:
    calls: list[int] = []

    def predict(data: Any, params: Any) -> Any:
        calls.append(len(data))
        return data

    async def scenario(batcher: Batcher) -> Any:
        requests = [rows(1, 2, 3), rows(4, 5), rows(*range(9)), rows(6), rows(7)]
        return await asyncio.gather(*(batcher.submit(r) for r in requests))

    results = run_batcher(predict, scenario, max_batch_size=4)
    assert [r.tolist() for r in results] == [[1, 2, 3], [4, 5], list(range(9)), [6], [7]]
    assert calls == [3, 2, 9, 2]


def test_incompatible_requests_are_not_mixed() -> None:
    seen: list[Any] = []

    def predict(data: Any, params: Any) -> Any:
        seen.append((type(data).__name__, len(data), params))
        return np.zeros(len(data))

    async def scenario(batcher: Batcher) -> Any:
        payloads: list[dict[str, Any]] = [
            {"instances": [1]},
            {"instances": [2], "params": {"k": 1}},
            {"dataframe_records": [{"x": 1}]},
            {"dataframe_records": [{"y": 1}]},
            {"instances": [1.5]},
        ]
        return await asyncio.gather(*(batcher.submit(parse_payload(p)) for p in payloads))

    run_batcher(predict, scenario, max_batch_size=8)
    assert seen == [
        ("ndarray", 1, None),
        ("ndarray", 1, {"k": 1}),
        ("DataFrame", 1, None),
        ("DataFrame", 1, None),
        ("ndarray", 1, None),
    ]


def test_without_batching_every_request_is_its_own_call() -> None:
    calls: list[int] = []

    def predict(data: Any, params: Any) -> Any:
        calls.append(len(data))
        return data

    async def scenario(batcher: Batcher) -> Any:
        return await asyncio.gather(*(batcher.submit(rows(i)) for i in range(5)))

    results = run_batcher(predict, scenario, max_batch_size=1, max_delay_s=0.0)
    assert [r.tolist() for r in results] == [[i] for i in range(5)]
    assert calls == [1, 1, 1, 1, 1]


def test_a_failing_batch_fails_each_of_its_requests() -> None:
    def predict(data: Any, params: Any) -> Any:
        raise RuntimeError("CUDA out of memory")

    async def scenario(batcher: Batcher) -> Any:
        return await asyncio.gather(
            batcher.submit(rows(1)), batcher.submit(rows(2)), return_exceptions=True
        )

    results = run_batcher(predict, scenario, max_batch_size=4)
    assert [str(r) for r in results] == ["CUDA out of memory"] * 2


def test_an_output_that_does_not_split_by_rows_is_answered_request_by_request() -> None:
    """Never a misalignment: one value per call (not per row) cannot be cut
    across a batch, so each request gets a call of its own, and batching stays
    off for the model from then on."""
    calls: list[int] = []

    def predict(data: Any, params: Any) -> Any:
        calls.append(len(data))
        return [int(np.asarray(data).sum())]

    async def scenario(batcher: Batcher) -> Any:
        first = await asyncio.gather(batcher.submit(rows(1)), batcher.submit(rows(2, 3)))
        later = await asyncio.gather(batcher.submit(rows(4)), batcher.submit(rows(5)))
        return first, later, batcher.max_batch_size

    (first, later, max_batch_size) = run_batcher(predict, scenario, max_batch_size=4)
    assert first == [[1], [5]]
    assert later == [[4], [5]]
    assert max_batch_size == 1
    assert calls == [3, 1, 2, 1, 1]  # the batch once, then alone


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ([1, 2, 3], [[1], [2, 3]]),
        (np.array([1, 2, 3]), [[1], [2, 3]]),
        (pd.Series([1, 2, 3]), [[1], [2, 3]]),
        (
            {"a": [1, 2, 3], "b": np.array([4, 5, 6])},
            [{"a": [1], "b": [4]}, {"a": [2, 3], "b": [5, 6]}],
        ),
    ],
)
def test_split_predictions_handles_common_output_types(output: Any, expected: Any) -> None:
    parts = split_predictions(output, [1, 2])
    normalised = [
        {k: list(v) for k, v in p.items()} if isinstance(p, dict) else list(p) for p in parts
    ]
    assert normalised == expected


def test_split_dataframe_output_keeps_rows() -> None:
    frame = pd.DataFrame({"p": [0.1, 0.2, 0.3], "label": ["a", "b", "c"]})
    first, second = split_predictions(frame, [2, 1])
    assert first["label"].tolist() == ["a", "b"]
    assert second["label"].tolist() == ["c"]


def test_stopping_fails_queued_and_running_requests() -> None:
    release = threading.Event()

    def predict(data: Any, params: Any) -> Any:
        release.wait(5)
        return data

    async def main() -> list[Any]:
        batcher = Batcher(predict, max_batch_size=1)
        batcher.start()
        waiting = [asyncio.ensure_future(batcher.submit(rows(i))) for i in range(3)]
        await asyncio.sleep(0.05)  # the first is inside predict, two are queued
        await batcher.stop()
        release.set()
        return await asyncio.gather(*waiting, return_exceptions=True)

    results = asyncio.run(main())
    assert [str(r) for r in results] == ["server is shutting down"] * 3


def test_stopping_fails_a_batch_still_being_collected() -> None:
    async def main() -> list[Any]:
        batcher = Batcher(lambda data, params: data, max_batch_size=8, max_delay_s=5.0)
        batcher.start()
        waiting = [asyncio.ensure_future(batcher.submit(rows(i))) for i in range(2)]
        await asyncio.sleep(0.05)  # both taken, the batcher waits for more
        await batcher.stop()
        return await asyncio.gather(*waiting, return_exceptions=True)

    results = asyncio.run(main())
    assert [str(r) for r in results] == ["server is shutting down"] * 2


def test_a_full_queue_refuses_at_once_and_running_for_tracks_the_model_call() -> None:
    release = threading.Event()

    async def main() -> tuple[Any, ...]:
        batcher = Batcher(lambda data, params: release.wait(5) and data, max_queue=1)
        batcher.start()
        try:
            idle = batcher.running_for()
            first = asyncio.ensure_future(batcher.submit(rows(1)))
            while batcher.running_for() is None:  # taken off the queue, inside predict
                await asyncio.sleep(0.01)
            second = asyncio.ensure_future(batcher.submit(rows(2)))  # fills the queue
            await asyncio.sleep(0)
            with pytest.raises(Overloaded, match="1 requests are queued"):
                await batcher.submit(rows(3))
            release.set()
            answers = await asyncio.gather(first, second)
            return idle, answers, batcher.running_for()
        finally:
            release.set()
            await batcher.stop()

    idle, answers, after = asyncio.run(main())
    assert idle is None and after is None
    assert [a.tolist() for a in answers] == [[1], [2]]


def test_a_request_given_up_while_queued_is_skipped_not_computed() -> None:
    release = threading.Event()
    calls: list[Any] = []

    def predict(data: Any, params: Any) -> Any:
        calls.append(data.tolist())
        release.wait(5)
        return data

    async def main() -> Any:
        batcher = Batcher(predict, max_queue=4)
        batcher.start()
        try:
            first = asyncio.ensure_future(batcher.submit(rows(1)))
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(batcher.submit(rows(2)), 0.05)
            release.set()
            return await first
        finally:
            await batcher.stop()

    assert asyncio.run(main()).tolist() == [1]
    assert calls == [[1]]


def test_submitting_to_a_stopped_batcher_is_shutting_down() -> None:
    async def main() -> None:
        with pytest.raises(ShuttingDown):
            await Batcher(lambda data, params: data).submit(rows(1))

    asyncio.run(main())
