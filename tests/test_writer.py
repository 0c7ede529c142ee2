"""Writing a bundle: idempotent, atomic, prunes only what swarmai wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from swarmai.errors import UsageError
from swarmai.render import Bundle
from swarmai.writer import MANIFEST, write_bundle


def _bundle(files: dict[str, str]) -> Bundle:
    return Bundle(target="swarm", main="stack.yml", files=files)


def test_second_write_of_the_same_bundle_changes_nothing(tmp_path: Path) -> None:
    bundle = _bundle({"stack.yml": "a: 1\n", "gateway/traefik.yml": "b: 2\n"})
    first = write_bundle(bundle, tmp_path)
    assert sorted(first.created) == ["gateway/traefik.yml", "stack.yml"]
    mtime = (tmp_path / "stack.yml").stat().st_mtime_ns
    second = write_bundle(bundle, tmp_path)
    assert second.created == second.changed == second.removed == []
    assert (tmp_path / "stack.yml").stat().st_mtime_ns == mtime


def test_stale_rendered_files_are_removed_and_foreign_files_kept(tmp_path: Path) -> None:
    write_bundle(_bundle({"stack.yml": "a\n", "runtimes/old/config.properties": "x\n"}), tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    report = write_bundle(_bundle({"stack.yml": "b\n"}), tmp_path)
    assert report.changed == ["stack.yml"]
    assert report.removed == ["runtimes/old/config.properties"]
    assert not (tmp_path / "runtimes/old/config.properties").exists()
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / MANIFEST).is_file()


def test_dry_run_reports_and_writes_nothing(tmp_path: Path) -> None:
    report = write_bundle(_bundle({"stack.yml": "a\n"}), tmp_path / "out", dry_run=True)
    assert report.created == ["stack.yml"]
    assert not (tmp_path / "out").exists()


def test_a_manifest_naming_a_path_outside_is_refused_and_nothing_touched(
        tmp_path: Path) -> None:
    out, outside = tmp_path / "out", tmp_path / "outside"
    write_bundle(_bundle({"stack.yml": "a\n"}), out)
    outside.write_text("keep me")
    (out / MANIFEST).write_text(json.dumps(["stack.yml", "../outside"]))
    with pytest.raises(UsageError, match=r"'\.\./outside' is not a path inside") as raised:
        write_bundle(_bundle({"stack.yml": "b\n"}), out)
    assert raised.value.exit_code == 2
    assert outside.read_text() == "keep me"
    assert (out / "stack.yml").read_text() == "a\n"  # refused before anything was written
