"""Host files written whole, never through a planted link, never outside their folder."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from swarmai.errors import OperationError, UsageError
from swarmai.files import create_atomically, inside, open_no_follow, write_atomically, write_private


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_atomically_replaces_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.yml"
    write_atomically(target, "one\n")
    write_atomically(target, "two\n")
    assert target.read_text() == "two\n" and _mode(target) == 0o644
    assert os.listdir(target.parent) == ["a.yml"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "a.yml"
    write_atomically(target, "old\n")

    def full(_fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OperationError, match=r"cannot write .*a\.yml: No space left"):
        write_atomically(target, "new\n")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["a.yml"]


def test_create_atomically_never_replaces(tmp_path: Path) -> None:
    secret = tmp_path / "db-password"
    assert create_atomically(secret, "first")
    assert not create_atomically(secret, "second")
    assert secret.read_text() == "first"
    assert os.listdir(tmp_path) == ["db-password"]


def test_write_private_is_for_the_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "state" / "s3.credentials"
    write_private(path, "key")
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700


def test_open_no_follow_refuses_a_link_with_exit_2(tmp_path: Path) -> None:
    outside = tmp_path / "precious"
    outside.write_text("keep")
    link = tmp_path / "audit.jsonl"
    link.symlink_to(outside)
    with pytest.raises(UsageError, match="audit log is a symbolic link") as raised:
        open_no_follow(link, os.O_WRONLY | os.O_APPEND, what="audit log")
    assert raised.value.exit_code == 2
    assert outside.read_text() == "keep"


@pytest.mark.parametrize("name", ["../outside", "/etc/passwd", "a/../../b", ""])
def test_inside_refuses_names_that_leave_the_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError, match="not a path inside"):
        inside(tmp_path / "out", name, source="manifest.json")


def test_inside_refuses_a_linked_folder_on_the_way(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out" / "gateway").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UsageError, match="through a symbolic link"):
        inside(tmp_path / "out", "gateway/traefik.yml", source="the rendered bundle")
    assert inside(tmp_path / "out", "runtimes/x.yml", source="b") == tmp_path / "out/runtimes/x.yml"
