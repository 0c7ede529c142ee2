"""``python -m swarmai.incontainer.bucket_mirror``: an artifact bucket to a folder and back.

Run by ``swarmai backup`` / ``restore`` on the stack's registry network, with the
S3 keys' Docker secret mounted (an AWS shared-credentials file, as the MLflow
entrypoint hands to boto3).  It runs in the stack's MLflow image, whose boto3 is
the client MLflow itself writes the artifacts with (swarmai's server image has no
S3 client), as ``python3 -c <this file>``: so it imports nothing but the standard
library and boto3.  ``download``
copies every object into ``DIR/<key>`` and writes an index (key, size, sha256)
as JSON to ``--index``; ``upload`` puts every object the index names back,
checking each file's sha256 first.  Both are safe to re-run: an object is
written whole or not at all, and writing one again gives the same bytes.
"""

from __future__ import annotations

import argparse
import configparser
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def credentials(path: Path, profile: str = "default") -> tuple[str, str]:
    """The access key and secret key of ``profile`` in an AWS shared-credentials file."""
    parser = configparser.ConfigParser()
    parser.read_string(path.read_text(encoding="utf-8"))
    section = parser[profile]
    return section["aws_access_key_id"].strip(), section["aws_secret_access_key"].strip()


def client(endpoint: str, credentials_file: Path) -> Any:
    access, secret = credentials(credentials_file)
    import boto3  # type: ignore[import-not-found, unused-ignore]  # in the MLflow image
    from botocore.config import Config  # type: ignore[import-not-found, unused-ignore]

    # botocore >= 1.36 sends CRC checksums several S3-compatible stores reject: only
    # when an operation requires them (as the MLflow service is configured).
    config = Config(request_checksum_calculation="when_required",
                    response_checksum_validation="when_required")
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access,
                        aws_secret_access_key=secret, region_name="us-east-1", config=config)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def safe_path(folder: Path, key: str) -> Path:
    """Where object ``key`` lives under ``folder``; a key that would leave it is refused."""
    path = (folder / key).resolve()
    if not path.is_relative_to(folder.resolve()) or path == folder.resolve():
        raise ValueError(f"object key {key!r} does not name a file inside the mirror")
    return path


def keys(s3: Any, bucket: str) -> list[str]:
    """Every object key of ``bucket`` (every page of the listing)."""
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        found += [str(item["Key"]) for item in page.get("Contents") or []
                  if not str(item["Key"]).endswith("/")]
    return found


def download(s3: Any, bucket: str, folder: Path) -> list[dict[str, Any]]:
    """Every object of ``bucket`` into ``folder``: its index, sorted by key."""
    index = []
    for key in keys(s3, bucket):
        path = safe_path(folder, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(path))
        index.append({"key": key, "size": path.stat().st_size, "sha256": sha256_of(path)})
    return sorted(index, key=lambda entry: entry["key"])


def upload(s3: Any, bucket: str, folder: Path, index: list[dict[str, Any]]) -> int:
    """Put every object of ``index`` from ``folder`` into ``bucket``; the count put.

    Every checksum is checked before the first object is written, so a corrupt
    mirror changes nothing in the bucket.
    """
    for entry in index:
        path = safe_path(folder, entry["key"])
        if not path.is_file() or sha256_of(path) != entry["sha256"]:
            raise ValueError(f"{path}: missing or not what the index recorded")
    if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets") or []}:
        s3.create_bucket(Bucket=bucket)
    for entry in index:
        s3.upload_file(str(safe_path(folder, entry["key"])), bucket, entry["key"])
    return len(index)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m swarmai.incontainer.bucket_mirror")
    parser.add_argument("direction", choices=("download", "upload"))
    parser.add_argument("--endpoint", required=True, help="http://s3:8333")
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--credentials", required=True, type=Path)
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--index", required=True, type=Path)
    args = parser.parse_args(argv)
    os.environ.setdefault("HOME", "/tmp")  # botocore looks for ~/.aws; a bare uid has none
    try:
        s3 = client(args.endpoint, args.credentials)
        if args.direction == "download":
            args.dir.mkdir(parents=True, exist_ok=True)
            index = download(s3, args.bucket, args.dir)
            temporary = args.index.with_name(args.index.name + ".tmp")
            temporary.write_text(json.dumps(index, indent=1), encoding="utf-8")
            os.replace(temporary, args.index)
            answer = {"objects": len(index)}
        else:
            index = json.loads(args.index.read_text(encoding="utf-8"))
            answer = {"objects": upload(s3, args.bucket, args.dir, index)}
    except Exception as error:  # the S3 client's own errors: reported, not a traceback
        print(json.dumps({"error": f"{type(error).__name__}: {error}"}))
        return 1
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
