"""``swarmai promote`` and ``rollback`` of one stack never overlap: the second exits 75
naming the first, before it reads or changes anything."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from swarmai.cli import cli

REPO = Path(__file__).resolve().parents[2]
DEV = str(REPO / "stacks" / "dev.yaml")


@contextmanager
def _held(state_dir: Path, command: str) -> Iterator[None]:
    """The stack's promote.lock held by another process running ``command``."""
    fd = os.open(state_dir / "promote.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        holder = {"pid": 4242, "host": "mgr-1", "started": "2026-12-03T01:00:00Z",
                  "command": command}
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        yield
    finally:
        os.close(fd)


@pytest.mark.parametrize("command", [["promote", DEV, "iris", "--to", "production",
                                      "--version", "2"], ["rollback", DEV, "iris"]])
def test_a_second_promotion_of_a_stack_exits_75_naming_the_first(
        tmp_path: Path, command: list[str]) -> None:
    with _held(tmp_path, "swarmai promote stacks/dev.yaml iris"):
        result = CliRunner().invoke(cli, [*command, "-t", "compose", "--state-dir",
                                          str(tmp_path)])
    assert result.exit_code == 75, result.output
    assert ("another promotion of stack dev is in progress (`swarmai promote stacks/dev.yaml "
            "iris`, pid 4242 on mgr-1, started 2026-12-03T01:00:00Z") in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("command", [["deploy", DEV], ["up", DEV]])
def test_deploy_and_up_wait_for_no_promotion_of_the_stack(tmp_path: Path,
                                                          command: list[str]) -> None:
    # A deploy would undo the running promotion's pending record, or roll under it.
    with _held(tmp_path, "swarmai promote stacks/dev.yaml iris"):
        result = CliRunner().invoke(cli, [*command, "--state-dir", str(tmp_path)])
    assert result.exit_code == 75, result.output
    assert ("another deploy or promotion of stack dev is in progress (`swarmai promote "
            "stacks/dev.yaml iris`, pid 4242 on mgr-1") in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["promote.lock"]


@pytest.mark.parametrize("command", [["secrets", "rotate", DEV, "mlflow-db-password"],
                                     ["restore", DEV, "."]])
def test_rotate_and_restore_wait_for_no_deploy_or_promotion(tmp_path: Path,
                                                            command: list[str]) -> None:
    fd = os.open(tmp_path / "promote.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        holder = {"pid": 4242, "host": "mgr-1", "started": "2026-12-03T01:00:00Z",
                  "command": "swarmai deploy stacks/dev.yaml"}
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        result = CliRunner().invoke(cli, [*command, "--state-dir", str(tmp_path)])
    finally:
        os.close(fd)
    assert result.exit_code == 75, result.output
    assert "is in progress (`swarmai deploy stacks/dev.yaml`, pid 4242 on mgr-1" in result.output
