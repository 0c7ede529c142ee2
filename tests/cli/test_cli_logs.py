"""`swarmai logs` through click: its arguments, its errors and what it prints (the
backend faked: no engine)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from swarmai.cli import cli, logs_cmds
from swarmai.engine import Engine
from swarmai.lifecycle.logs import LogLine, LogOptions
from swarmai.spec import Stack

Write = Callable[..., Path]

STACK = """\
    version: 1
    name: demo
    models:
      - {name: iris, runtime: fastapi, model: models:/iris@production, replicas: 2}
      - {name: churn, runtime: fastapi, model: models:/churn@production}
"""


def logs(*args: str) -> Result:
    return CliRunner().invoke(cli, ["logs", *args])


def stamp(second: int) -> datetime:
    return datetime(2026, 12, 2, 5, 34, second, tzinfo=UTC)


class FakeBackend:
    def __init__(self, lines: Sequence[LogLine], interrupt: bool = False) -> None:
        self.lines, self.interrupt = lines, interrupt
        self.asked: list[tuple[list[str], LogOptions]] = []
        self.targets: list[str] = []

    def logs(self, stack: Stack, services: Sequence[str], options: LogOptions
             ) -> Iterator[LogLine]:
        self.asked.append((list(services), options))
        yield from self.lines
        if self.interrupt:
            raise KeyboardInterrupt


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeBackend]:
    def install(lines: Sequence[LogLine], interrupt: bool = False) -> FakeBackend:
        backend = FakeBackend(lines, interrupt)

        def backend_for(target: str, engine: object) -> FakeBackend:
            backend.targets.append(target)
            return backend

        monkeypatch.setattr(logs_cmds, "backend_for", backend_for)
        monkeypatch.setattr(Engine, "from_env", staticmethod(lambda: None))
        return backend
    return install


def test_an_unknown_model_exits_2_naming_the_file_and_its_models(write_stack: Write) -> None:
    path = write_stack(STACK)
    result = logs(str(path), "irs")
    assert result.exit_code == 2
    assert result.stderr == f"{path}: no model 'irs'; its models: iris, churn\n"
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("option", "value", "says"), [
    ("--tail", "ten", "expected a number of lines or 'all'"),
    ("--since", "yesterday", "expected a duration (10m, 1h30m)"),
])
def test_bad_options_exit_2(write_stack: Write, option: str, value: str, says: str) -> None:
    result = logs(str(write_stack(STACK)), option, value)
    assert result.exit_code == 2
    assert f"Invalid value for '{option}'" in result.stderr and says in result.stderr


def test_lines_are_printed_with_aligned_prefixes(write_stack: Write,
                                                 fake: Callable[..., FakeBackend]) -> None:
    backend = fake([LogLine("iris", 1, "vm", stamp(1), "started"),
                    LogLine("iris-canary", 1, "vm", stamp(2), "loaded")])
    result = logs(str(write_stack(STACK)), "iris", "--tail", "all", "--since", "10m",
                  "--timestamps")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "iris/1@vm        | 2026-12-02T05:34:01.000000Z started\n"
        "iris-canary/1@vm | 2026-12-02T05:34:02.000000Z loaded\n")
    services, options = backend.asked[0]
    assert services == ["model-iris", "model-iris-canary"]
    assert (options.follow, options.tail) == (False, None)
    assert options.since == pytest.approx(datetime.now(UTC).timestamp() - 600, abs=60)
    assert backend.targets == ["swarm"]


def test_follow_prints_as_lines_come_and_ctrl_c_exits_130(
        write_stack: Write, fake: Callable[..., FakeBackend]) -> None:
    backend = fake([LogLine("iris", 2, None, stamp(1), "one")], interrupt=True)
    result = logs(str(write_stack(STACK)), "-f", "-t", "compose", "--service", "gateway")
    assert result.exit_code == 130
    assert result.stdout == "iris/2 | one\n"
    assert "Traceback" not in result.output
    assert backend.asked[0][0] == ["gateway"]
    assert backend.targets == ["compose"]
    assert backend.asked[0][1] == LogOptions(follow=True, tail=100, since=None)
