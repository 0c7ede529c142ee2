"""`swarmai logs` below the CLI: parsing the engine's lines, merging, formatting, and the
two targets' streams against a fake API (no engine)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from swarmai.engine import Engine
from swarmai.errors import OperationError, UsageError
from swarmai.lifecycle.logs import (
    LogLine,
    LogOptions,
    Reorder,
    compose_logs,
    container_line,
    followed,
    format_line,
    in_time_order,
    parse_since,
    read_lines,
    select_services,
    service_line,
    source_names,
    split_details,
    split_timestamp,
    swarm_logs,
)
from swarmai.spec import Stack, load_stack

Write = Callable[..., Path]

STACK = """\
    version: 1
    name: demo
    models:
      - {name: iris, runtime: fastapi, model: models:/iris@production, replicas: 2}
      - {name: churn, runtime: tfserving, model: models:/churn@production}
"""
# As the engine sends a line of `service logs --details --timestamps` (Docker 26).
SERVICE_RAW = ("2026-12-02T05:34:05.741470090Z com.docker.swarm.node.id=node1,"
               "com.docker.swarm.service.id=svc1,com.docker.swarm.task.id=task2 "
               "INFO loaded models:/iris@production as iris version 3")


def at(second: float) -> datetime:
    return datetime(2026, 12, 2, 5, 34, 0, tzinfo=UTC) + timedelta(seconds=second)


def line(second: float, text: str = "x", source: str = "iris", replica: int | None = 1,
         node: str | None = None) -> LogLine:
    return LogLine(source=source, replica=replica, node=node, timestamp=at(second), text=text)


@pytest.fixture
def stack(write_stack: Write) -> Stack:
    return load_stack(write_stack(STACK, "demo.yaml"), "swarm")


# --- parsing ----------------------------------------------------------------------------


def test_a_service_line_names_its_replica_and_node() -> None:
    parsed = service_line(SERVICE_RAW, "iris", {"task2": 2}.get, {"node1": "gpu-a"}.__getitem__)
    assert parsed == LogLine(source="iris", replica=2, node="gpu-a",
                             timestamp=datetime(2026, 12, 2, 5, 34, 5, 741470, tzinfo=UTC),
                             text="INFO loaded models:/iris@production as iris version 3")
    assert parsed.prefix == "iris/2@gpu-a"


def test_details_are_unescaped_and_a_line_without_them_is_kept_whole() -> None:
    assert split_details("a=1%2C2,b=x+y text with spaces") == (
        {"a": "1,2", "b": "x y"}, "text with spaces")
    assert split_details("plain text, no details") == ({}, "plain text, no details")
    assert split_details("k=v ") == ({"k": "v"}, "")  # an empty line


def test_a_line_without_a_readable_timestamp_sorts_first_and_keeps_its_text() -> None:
    stamp, text = split_timestamp("garbage line")
    assert stamp.year == 1 and text == "garbage line"


def test_a_container_line_has_no_node() -> None:
    parsed = container_line("2026-12-02T05:34:05.000000001Z hello", "iris", 2)
    assert (parsed.prefix, parsed.text) == ("iris/2", "hello")


def test_a_global_service_line_has_no_replica() -> None:
    parsed = service_line(SERVICE_RAW, "sync-iris", lambda task: None, lambda node: "gpu-b")
    assert parsed.prefix == "sync-iris@gpu-b"


# --- formatting and order -----------------------------------------------------------------


def test_lines_are_prefixed_aligned_and_optionally_timestamped() -> None:
    one = line(1.5, "ready", node="gpu-a")
    assert format_line(one) == "iris/1@gpu-a | ready"
    assert format_line(one, width=16) == "iris/1@gpu-a     | ready"
    assert format_line(one, timestamps=True) == (
        "iris/1@gpu-a | 2026-12-02T05:34:01.500000Z ready")


def test_merging_orders_by_time_and_keeps_one_streams_order_for_equal_times() -> None:
    lines = [line(2, "b1", replica=1), line(1, "a2", replica=2), line(2, "b2", replica=1),
             line(0, "z", replica=2)]
    assert [x.text for x in in_time_order(lines)] == ["z", "a2", "b1", "b2"]


def test_reorder_holds_lines_for_the_window_then_lets_the_oldest_out() -> None:
    held = Reorder(0.3)
    held.add(line(5, "late stream, newer"), now=10.0)
    held.add(line(4, "other stream, older"), now=10.1)
    assert held.due(10.2) == [] and held.wait(10.2) == pytest.approx(0.2)
    # Both arrived within the window: they leave in time order, not arrival order.
    assert [x.text for x in held.due(10.5)] == ["other stream, older", "late stream, newer"]
    assert len(held) == 0 and held.wait(11) is None
    held.add(line(9), now=12.0)
    assert [x.text for x in held.drain()] == ["x"]


def test_read_lines_gathers_every_source_in_time_order() -> None:
    sources = [lambda: [line(1, "a1"), line(3, "a3")], lambda: [line(2, "b2")]]
    assert [x.text for x in read_lines(sources, LogOptions())] == ["a1", "b2", "a3"]


def test_followed_lines_come_from_every_stream_and_end_with_them() -> None:
    sources = [lambda: iter([line(1, "a1"), line(3, "a3")]), lambda: iter([line(2, "b2")])]
    assert sorted(x.text for x in followed(sources, 0.0)) == ["a1", "a3", "b2"]
    held = list(followed(sources, 5.0))  # ended before their window: drained in order
    assert [x.text for x in held] == ["a1", "b2", "a3"]


def broken() -> Iterator[LogLine]:
    yield line(1)
    raise ConnectionResetError("engine went away")


@pytest.mark.parametrize("follow", [False, True])
def test_a_failing_stream_becomes_an_operation_error(follow: bool) -> None:
    with pytest.raises(OperationError, match="engine went away"):
        list(read_lines([broken], LogOptions(follow=follow)))


# --- --since ---------------------------------------------------------------------------------

NOW = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "seconds_ago"), [
    ("90s", 90), ("10m", 600), ("1h30m", 5400), ("2d", 172800), ("1.5h", 5400), ("250ms", 0.25),
])
def test_since_reads_durations_before_now(text: str, seconds_ago: float) -> None:
    assert parse_since(text, NOW) == pytest.approx(NOW.timestamp() - seconds_ago)


def test_since_reads_times_and_unix_timestamps() -> None:
    assert parse_since("2026-12-02T11:00:00Z", NOW) == NOW.timestamp() - 3600
    assert parse_since("2026-12-02T13:00:00+02:00", NOW) == NOW.timestamp() - 3600
    assert parse_since("1700000000.5", NOW) == 1700000000.5


@pytest.mark.parametrize("text", ["yesterday", "10x", "-5m", ""])
def test_since_refuses_what_docker_would_not_read(text: str) -> None:
    with pytest.raises(UsageError, match="expected a duration"):
        parse_since(text, NOW)


# --- which services --------------------------------------------------------------------------


def test_without_model_every_models_servers_and_canaries(stack: Stack) -> None:
    assert select_services(stack, Path("demo.yaml"), "swarm", None, ()) == [
        "model-iris", "model-iris-canary", "model-churn", "model-churn-canary"]
    assert source_names(stack)["model-iris-canary"] == "iris-canary"


def test_a_model_and_named_services(stack: Stack) -> None:
    assert select_services(stack, Path("demo.yaml"), "swarm", "churn", ("gateway",)) == [
        "model-churn", "model-churn-canary", "gateway"]
    assert select_services(stack, Path("demo.yaml"), "swarm", None, ("sync-churn",)) == [
        "sync-churn"]


def test_an_unknown_model_names_the_file_and_its_models(stack: Stack) -> None:
    with pytest.raises(UsageError) as raised:
        select_services(stack, Path("demo.yaml"), "swarm", "irs", ())
    assert str(raised.value) == "demo.yaml: no model 'irs'; its models: iris, churn"
    assert raised.value.exit_code == 2


def test_an_unknown_service_names_the_stacks_services(stack: Stack) -> None:
    with pytest.raises(UsageError,
                       match=r"no service 'traefik'; its services: gateway, engine-proxy, mlflow"):
        select_services(stack, Path("demo.yaml"), "swarm", None, ("traefik",))


# --- the two targets, against a fake API ------------------------------------------------------


class FakeApi:
    """What swarm_logs and compose_logs ask of docker-py's APIClient."""

    def __init__(self) -> None:
        self.task_lists = 0
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def services(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"ID": "svc1", "Spec": {"Name": "demo_model-iris"}},
                {"ID": "svc2", "Spec": {"Name": "demo_gateway"}}]

    def tasks(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        self.task_lists += 1
        tasks = [{"ID": "task1", "Slot": 1}]
        return tasks + ([{"ID": "task2", "Slot": 2}] if self.task_lists > 1 else [])

    def nodes(self) -> list[dict[str, Any]]:
        return [{"ID": "node1", "Description": {"Hostname": "gpu-a"}}]

    def service_logs(self, service: str, **kwargs: Any) -> Iterator[bytes]:
        self.calls.append((service, kwargs))
        attributes = "com.docker.swarm.node.id=node1,com.docker.swarm.task.id="
        yield f"2026-12-02T05:00:02.0Z {attributes}task1 second\n".encode()
        # A task the first listing did not know (started since): listed again.
        yield f"2026-12-02T05:00:01.0Z {attributes}task2 first\n".encode()

    def containers(self, all: bool, filters: dict[str, Any]) -> list[dict[str, Any]]:
        def labels(service: str, number: str) -> dict[str, str]:
            return {"com.docker.compose.service": service,
                    "com.docker.compose.container-number": number}
        return [{"Id": "c2", "Labels": labels("model-iris", "2")},
                {"Id": "c1", "Labels": labels("model-iris", "1")},
                {"Id": "c9", "Labels": labels("mlflow", "1")}]

    def logs(self, container: str, **kwargs: Any) -> Iterator[bytes]:
        self.calls.append((container, kwargs))
        yield f"2026-12-02T05:00:0{container[1]}.0Z from {container}\n".encode()


def test_swarm_lines_name_task_slot_and_node_host(stack: Stack) -> None:
    api = FakeApi()
    engine = Engine(cli=None, api=api)  # type: ignore[arg-type]
    lines = list(swarm_logs(engine, stack, ["model-iris", "model-iris-canary"],
                            LogOptions(tail=5, since=1700000000.0)))
    assert [format_line(x) for x in lines] == ["iris/2@gpu-a | first", "iris/1@gpu-a | second"]
    assert api.task_lists == 2
    service, kwargs = api.calls[0]
    assert service == "demo_model-iris"
    assert kwargs == {"details": True, "follow": False, "stdout": True, "stderr": True,
                      "timestamps": True, "tail": 5, "since": "1700000000.000000"}


def test_compose_reads_one_stream_per_container_of_the_services(stack: Stack) -> None:
    api = FakeApi()
    engine = Engine(cli=None, api=api)  # type: ignore[arg-type]
    lines = list(compose_logs(engine, stack, ["model-iris"], LogOptions(tail=None)))
    assert [format_line(x) for x in lines] == ["iris/1 | from c1", "iris/2 | from c2"]
    assert sorted(c for c, _ in api.calls) == ["c1", "c2"]
    assert api.calls[0][1]["tail"] == "all" and api.calls[0][1]["since"] is None


@pytest.mark.parametrize("reader", [swarm_logs, compose_logs])
def test_a_stack_that_does_not_run_the_services_says_how_to_start_it(
        stack: Stack, reader: Callable[..., Iterator[LogLine]]) -> None:
    engine = Engine(cli=None, api=FakeApi())  # type: ignore[arg-type]
    with pytest.raises(OperationError, match="runs none of model-churn"):
        reader(engine, stack, ["model-churn"], LogOptions())
