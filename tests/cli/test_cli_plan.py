"""`swarmai plan`'s command line: what --help teaches, and invalid input exits 2 before any
engine is asked (the plan itself: tests/lifecycle/test_plan.py, tests/e2e/test_plan.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from swarmai.cli import cli


def test_help_teaches_what_is_compared_and_the_exit_codes() -> None:
    result = CliRunner().invoke(cli, ["plan", "--help"])
    assert result.exit_code == 0
    for text in ("Examples:", "3  changes pending", "0  no changes", "restarts",
                 "never read or shown", "--target", "--output", "--offline"):
        assert text in result.output, text
    for command in ("deploy", "up"):
        assert "--plan" in CliRunner().invoke(cli, [command, "--help"]).output


def test_an_invalid_stack_exits_2(write_stack: Callable[..., Path]) -> None:
    path = write_stack("version: 1\nname: Bad\n")
    result = CliRunner().invoke(cli, ["plan", str(path)])
    assert result.exit_code == 2
    assert "lowercase DNS label" in result.output
