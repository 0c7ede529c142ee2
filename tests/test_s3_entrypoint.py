"""registry/entrypoints/s3-entrypoint.sh, run by sh as the store's container runs it.

The script reads /run/secrets/NAME and writes SeaweedFS's JSON to /tmp/s3.json;
this copy reads and writes under tmp_path instead, and `weed`/`minio` are
stand-ins that print their arguments.  The real store runs it in
tests/e2e/test_registry_containers.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from swarmai import assets

SECRET = "s3-creds"


def _run(tmp_path: Path, access: str, secret: str,
         backend: str = "seaweedfs") -> subprocess.CompletedProcess[str]:
    script = assets.read_text("registry", "entrypoints/s3-entrypoint.sh")
    script = script.replace("/run/secrets/", f"{tmp_path}/secrets/").replace(
        "/tmp/s3.json", f"{tmp_path}/s3.json")
    (tmp_path / "entrypoint.sh").write_text(script)
    (tmp_path / "secrets").mkdir(exist_ok=True)
    (tmp_path / "secrets" / SECRET).write_text(
        f"[default]\naws_access_key_id = {access}\naws_secret_access_key = {secret}\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("weed", "minio"):
        (bin_dir / name).write_text('#!/bin/sh\necho "started: $*"\n')
        (bin_dir / name).chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "SWARMAI_S3_SECRET": SECRET,
           "SWARMAI_S3_BACKEND": backend}
    return subprocess.run(["sh", str(tmp_path / "entrypoint.sh")], env=env, text=True,
                          capture_output=True, check=False, timeout=30)


def test_generated_keys_reach_seaweedfs_as_one_identity(tmp_path: Path) -> None:
    done = _run(tmp_path, "swarmaiAbc23", "k3y/with+slash=")
    assert done.returncode == 0, done.stderr
    assert "started: server" in done.stdout
    identities = json.loads((tmp_path / "s3.json").read_text())["identities"]
    assert [i["credentials"] for i in identities] == [
        [{"accessKey": "swarmaiAbc23", "secretKey": "k3y/with+slash="}]]


@pytest.mark.parametrize("secret", [
    'x"}],"actions":["Admin"]},{"name":"evil","credentials":[{"accessKey":"e","secretKey":"e',
    "back\\slash", "with space", "dollar$sign",
])
def test_a_key_that_could_escape_the_json_is_refused(tmp_path: Path, secret: str) -> None:
    done = _run(tmp_path, "swarmaiAbc23", secret)
    assert done.returncode == 1
    assert "may hold only letters, digits and /+=._~-" in done.stderr
    assert f"swarmai secrets rotate FILE {SECRET}" in done.stderr
    assert not (tmp_path / "s3.json").exists() and "started" not in done.stdout


def test_well_known_defaults_are_still_refused(tmp_path: Path) -> None:
    done = _run(tmp_path, "minioadmin", "minioadmin", backend="minio")
    assert done.returncode == 1 and "well-known default" in done.stderr
