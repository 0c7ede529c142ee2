"""Snapshots in an S3 bucket: ``s3://BUCKET/PREFIX`` as a backup's destination or a
restore's source, copied with the ``minio`` client (MinIO, SeaweedFS, AWS S3 alike).

A snapshot is still made in a local folder first (the dump and the mirror need
one); then every file is uploaded under ``PREFIX/<snapshot name>/``, the manifest
last, so a copy cut short has no manifest and is never taken for a snapshot
(re-running the backup makes a new one).  A restore downloads the snapshot to a
local folder, where every checksum of the manifest is verified as for any
snapshot before anything changes.

The keys come from a file (an AWS shared-credentials file, the format of the
stack's own S3 secret) or from ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``,
never from the command line, where other users of the host could read them.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmai.errors import OperationError, UsageError
from swarmai.lifecycle.backup_manifest import MANIFEST

SCHEME = "s3://"


@dataclass(frozen=True)
class S3Location:
    """``s3://BUCKET/PREFIX`` (no leading or trailing ``/`` in ``prefix``)."""

    bucket: str
    prefix: str

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def uri(self, *parts: str) -> str:
        return f"{SCHEME}{self.bucket}/{self.key(*parts)}".rstrip("/")


@dataclass(frozen=True)
class S3Access:
    """Where the bucket's server is and the keys to it."""

    endpoint: str  # https://host:port or http://host:port
    access_key: str
    secret_key: str


def parse_location(text: str) -> S3Location | None:
    """``text`` as an S3 location, or None for a local path."""
    if not text.startswith(SCHEME):
        return None
    bucket, _, prefix = text.removeprefix(SCHEME).partition("/")
    if not bucket:
        raise UsageError(f"{text}: name a bucket, as s3://BUCKET/PREFIX")
    return S3Location(bucket, prefix.strip("/"))


def access(endpoint: str | None, credentials_file: Path | None,
           env: dict[str, str] | None = None) -> S3Access:
    """The server and keys for an S3 location, from the options and the environment."""
    env = dict(os.environ if env is None else env)
    if not endpoint:
        raise UsageError("an s3:// location needs --s3-endpoint URL (for example "
                         "https://minio.example.com:9000)")
    parsed = urllib.parse.urlsplit(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.path.strip("/"):
        raise UsageError(f"--s3-endpoint {endpoint}: write http(s)://HOST[:PORT]")
    if credentials_file is not None:
        access_key, secret_key = _from_file(credentials_file)
    else:
        access_key = env.get("AWS_ACCESS_KEY_ID", "")
        secret_key = env.get("AWS_SECRET_ACCESS_KEY", "")
        if not access_key or not secret_key:
            raise UsageError("an s3:// location needs its keys: --s3-credentials FILE (an AWS "
                             "credentials file) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    return S3Access(endpoint, access_key, secret_key)


def _from_file(path: Path) -> tuple[str, str]:
    parser = configparser.ConfigParser()
    try:
        parser.read_string(path.read_text(encoding="utf-8"))
        section = parser["default"]
        return section["aws_access_key_id"].strip(), section["aws_secret_access_key"].strip()
    except (OSError, configparser.Error, KeyError) as error:
        raise UsageError(f"{path}: not an AWS credentials file with a [default] profile "
                         f"(aws_access_key_id, aws_secret_access_key): {error}") from None


def client(where: S3Access) -> Any:
    try:
        from minio import Minio
    except ImportError:
        raise UsageError("s3:// locations need the minio client: pip install "
                         "'swarmai[s3]'") from None

    parsed = urllib.parse.urlsplit(where.endpoint)
    return Minio(parsed.netloc, access_key=where.access_key, secret_key=where.secret_key,
                 secure=parsed.scheme == "https")


def upload_snapshot(s3: Any, folder: Path, location: S3Location) -> str:
    """Copy snapshot ``folder`` to ``location``/<its name>/, the manifest last; its URI."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    manifest = folder / MANIFEST
    with _s3_errors(f"uploading {folder.name} to {location.uri()}"):
        if not s3.bucket_exists(location.bucket):
            raise OperationError(f"bucket {location.bucket} does not exist at the endpoint; "
                                 "create it first (nothing was uploaded)")
        for path in [p for p in files if p != manifest] + [manifest]:
            relative = path.relative_to(folder).as_posix()
            s3.fput_object(location.bucket, location.key(folder.name, relative), str(path))
    return location.uri(folder.name)


def download_snapshot(s3: Any, location: S3Location, into: Path) -> Path:
    """Copy the snapshot at ``location`` into a new folder under ``into``; its path."""
    name = location.prefix.rsplit("/", 1)[-1]
    if not name:
        raise UsageError(f"{location.uri()}: name a snapshot, as s3://BUCKET/PREFIX/<stack>-<time>")
    folder = into / name
    with _s3_errors(f"downloading {location.uri()}"):
        keys = [o.object_name for o in s3.list_objects(location.bucket,
                                                       prefix=location.key() + "/",
                                                       recursive=True)]
        if location.key(MANIFEST) not in keys:
            raise UsageError(f"{location.uri()}: no {MANIFEST} there: not a snapshot, or an "
                             "upload that never finished")
        for key in keys:
            target = (folder / key.removeprefix(location.key() + "/")).resolve()
            if not target.is_relative_to(folder.resolve()):
                raise UsageError(f"{location.uri()}: object {key!r} would leave the snapshot")
            s3.fget_object(location.bucket, key, str(target))
    return folder


@contextlib.contextmanager
def _s3_errors(what: str) -> Iterator[None]:
    """The S3 client's and the network's errors as an OperationError naming the step."""
    from minio.error import MinioException
    from urllib3.exceptions import HTTPError

    try:
        yield
    except (MinioException, HTTPError, OSError) as error:
        raise OperationError(f"{what} failed: {error}") from None
