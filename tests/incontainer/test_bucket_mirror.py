"""The artifact mirror against a fake S3 client: every object down with its sha256, and back."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from swarmai.incontainer import bucket_mirror


@dataclass
class Pages:
    pages: list[dict[str, Any]]

    def paginate(self, Bucket: str) -> list[dict[str, Any]]:
        return self.pages


class FakeS3:
    """boto3's S3 client, as far as the mirror uses it; listings come two keys a page."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = dict(objects)
        self.buckets = {"models"}
        self.puts: list[str] = []

    def get_paginator(self, name: str) -> Pages:
        assert name == "list_objects_v2"
        listed = [{"Key": "artifacts/1/", "Size": 0}] + [
            {"Key": k, "Size": len(v)} for k, v in self.objects.items()]
        return Pages([{"Contents": listed[i:i + 2]} for i in range(0, len(listed), 2)]
                     + [{}])

    def download_file(self, bucket: str, key: str, path: str) -> None:
        Path(path).write_bytes(self.objects[key])

    def list_buckets(self) -> dict[str, Any]:
        return {"Buckets": [{"Name": name} for name in self.buckets]}

    def create_bucket(self, Bucket: str) -> None:
        self.buckets.add(Bucket)

    def upload_file(self, path: str, bucket: str, key: str) -> None:
        self.puts.append(key)
        self.objects[key] = Path(path).read_bytes()


OBJECTS = {"artifacts/1/m-1/MLmodel": b"flavors: {}\n", "artifacts/1/m-1/model.pkl": b"\x80\x05.",
           "artifacts/1/m-2/MLmodel": b"flavors: {x: 1}\n"}


def test_download_writes_every_object_and_its_sha256(tmp_path: Path) -> None:
    index = bucket_mirror.download(FakeS3(OBJECTS), "models", tmp_path)
    assert [e["key"] for e in index] == sorted(OBJECTS)
    for entry in index:
        data = (tmp_path / entry["key"]).read_bytes()
        assert data == OBJECTS[entry["key"]] and entry["size"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()


def test_upload_puts_every_object_back_and_can_run_again(tmp_path: Path) -> None:
    index = bucket_mirror.download(FakeS3(OBJECTS), "models", tmp_path)
    empty = FakeS3({})
    empty.buckets.clear()
    assert bucket_mirror.upload(empty, "models", tmp_path, index) == 3
    assert bucket_mirror.upload(empty, "models", tmp_path, index) == 3
    assert empty.objects == OBJECTS and "models" in empty.buckets


def test_a_corrupt_file_stops_the_upload_before_any_object_is_written(tmp_path: Path) -> None:
    index = bucket_mirror.download(FakeS3(OBJECTS), "models", tmp_path)
    (tmp_path / "artifacts/1/m-1/model.pkl").write_bytes(b"changed")
    target = FakeS3({})
    with pytest.raises(ValueError, match=r"model\.pkl"):
        bucket_mirror.upload(target, "models", tmp_path, index)
    assert target.puts == []


def test_a_key_that_leaves_the_mirror_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="inside the mirror"):
        bucket_mirror.download(FakeS3({"../outside": b"x"}), "models", tmp_path / "m")


def test_credentials_are_read_from_the_shared_credentials_file(tmp_path: Path) -> None:
    secret = tmp_path / "s3"
    secret.write_text("[default]\naws_access_key_id = swarmaiKEY\naws_secret_access_key = S3CR3T\n")
    assert bucket_mirror.credentials(secret) == ("swarmaiKEY", "S3CR3T")


def test_main_reports_failures_as_json_not_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = bucket_mirror.main(["download", "--endpoint", "http://s3:8333", "--bucket", "b",
                               "--credentials", str(tmp_path / "missing"), "--dir",
                               str(tmp_path), "--index", str(tmp_path / "i.json")])
    assert code == 1
    assert "FileNotFoundError" in json.loads(capsys.readouterr().out)["error"]
