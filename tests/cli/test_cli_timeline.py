"""--verbose leads each progress line with the seconds since the command began."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from swarmai.cli import cli
from swarmai.cli.common import progress, timeline


def test_without_verbose_progress_is_plain() -> None:
    assert timeline(False) is progress


def test_verbose_lines_carry_the_elapsed_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    timed = timeline(True)
    timed("starting the registry")
    timed("checking routes")
    lines = capsys.readouterr().err.splitlines()
    assert [re.sub(r"^\[ *\d+\.\ds\] ", "", line) for line in lines] == [
        "starting the registry", "checking routes"]
    assert all(re.match(r"^\[ *\d+\.\ds\] ", line) for line in lines), lines


@pytest.mark.parametrize("command", ["deploy", "rm", "up", "down"])
def test_every_lifecycle_command_takes_verbose(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert "--verbose" in result.output
