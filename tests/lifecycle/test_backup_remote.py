"""Snapshots in an S3 bucket: locations, keys, and the copy's order, with an in-memory
bucket (the real S3 server is in tests/e2e/test_backup.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from swarmai.errors import OperationError, UsageError
from swarmai.lifecycle import backup_remote
from swarmai.lifecycle.backup_remote import S3Location


def test_locations_parse_and_local_paths_are_none() -> None:
    assert backup_remote.parse_location("/var/backups") is None
    assert backup_remote.parse_location("s3://backups") == S3Location("backups", "")
    where = backup_remote.parse_location("s3://backups/nightly/dev/")
    assert where == S3Location("backups", "nightly/dev")
    assert where.uri("dev-1") == "s3://backups/nightly/dev/dev-1"
    with pytest.raises(UsageError, match="name a bucket"):
        backup_remote.parse_location("s3:///nightly")


def test_keys_come_from_a_file_or_the_environment_never_a_flag(tmp_path: Path) -> None:
    endpoint = "https://s3.example.com:9000"
    with pytest.raises(UsageError, match="--s3-endpoint"):
        backup_remote.access(None, None, {})
    with pytest.raises(UsageError, match="HOST"):
        backup_remote.access("s3.example.com", None, {})
    with pytest.raises(UsageError, match="AWS_ACCESS_KEY_ID"):
        backup_remote.access(endpoint, None, {})
    env = {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret"}
    assert backup_remote.access(endpoint, None, env).access_key == "id"
    keys = tmp_path / "credentials"
    keys.write_text("[default]\naws_access_key_id = fid\naws_secret_access_key = fsecret\n")
    found = backup_remote.access(endpoint, keys, env)  # the file wins
    assert (found.access_key, found.secret_key) == ("fid", "fsecret")
    keys.write_text("[other]\naws_access_key_id = x\n")
    with pytest.raises(UsageError, match=str(keys)):
        backup_remote.access(endpoint, keys, env)


@dataclass
class _Object:
    object_name: str


@dataclass
class _Bucket:
    """The minio client's calls the copy makes, on one in-memory bucket."""

    name: str
    objects: dict[str, bytes] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def bucket_exists(self, bucket: str) -> bool:
        return bucket == self.name

    def fput_object(self, bucket: str, key: str, path: str) -> None:
        self.objects[key] = Path(path).read_bytes()
        self.order.append(key)

    def list_objects(self, bucket: str, prefix: str, recursive: bool) -> list[Any]:
        return [_Object(k) for k in sorted(self.objects) if k.startswith(prefix)]

    def fget_object(self, bucket: str, key: str, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(self.objects[key])


def _snapshot(root: Path) -> Path:
    folder = root / "dev-20261203T023000Z"
    (folder / "artifacts" / "1").mkdir(parents=True)
    (folder / "artifacts" / "1" / "model.pkl").write_bytes(b"weights")
    (folder / "registry.dump").write_bytes(b"dump")
    (folder / "manifest.json").write_text("{}")
    return folder


def test_a_snapshot_goes_up_manifest_last_and_comes_back_whole(tmp_path: Path) -> None:
    bucket = _Bucket("backups")
    where = S3Location("backups", "nightly")
    uri = backup_remote.upload_snapshot(bucket, _snapshot(tmp_path / "made"), where)
    assert uri == "s3://backups/nightly/dev-20261203T023000Z"
    assert bucket.order[-1] == "nightly/dev-20261203T023000Z/manifest.json"
    assert len(bucket.order) == 3
    back = backup_remote.download_snapshot(
        bucket, backup_remote.parse_location(uri) or where, tmp_path / "got")
    assert back == tmp_path / "got" / "dev-20261203T023000Z"
    assert (back / "artifacts" / "1" / "model.pkl").read_bytes() == b"weights"
    assert sorted(p.name for p in back.iterdir()) == ["artifacts", "manifest.json",
                                                      "registry.dump"]


def test_an_upload_cut_short_is_not_a_snapshot_and_a_missing_bucket_is_said(
        tmp_path: Path) -> None:
    bucket = _Bucket("backups")
    bucket.objects["nightly/dev-1/registry.dump"] = b"dump"  # no manifest: cut short
    with pytest.raises(UsageError, match="never finished"):
        backup_remote.download_snapshot(bucket, S3Location("backups", "nightly/dev-1"),
                                        tmp_path)
    with pytest.raises(OperationError, match="bucket elsewhere does not exist"):
        backup_remote.upload_snapshot(bucket, _snapshot(tmp_path / "made"),
                                      S3Location("elsewhere", ""))
