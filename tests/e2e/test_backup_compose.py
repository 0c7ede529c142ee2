"""Backup and restore on Compose with a SQLite registry: the other target, the other database.

up -> two versions pushed -> backup -> down --volumes -> up (empty: stops at the
model check) -> restore -> up: the same versions and aliases, the server serves
the version it served before.  The tasks run as one-off containers with the
secret files of the state folder; SQLite is copied with its backup API.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from lifecycle import engine_snapshot, swarmai

pytestmark = pytest.mark.e2e

NAME = "e2ebkc"
PORT = 18900  # test_backup.py's port: its stack is removed when its module ends
STACK = f"""\
version: 1
name: {NAME}
gateway: {{port: {PORT}, tls: {{mode: "off"}}}}
storage: {{backend: seaweedfs, bucket: models, credentials_secret: {NAME}-s3}}
registry: {{backend_store: sqlite}}
models:
  - name: alpha
    runtime: fastapi
    model: models:/alpha@production
"""
MAKE_MODELS = """
import sys
import cloudpickle

def constant(value):
    def predict(frame):
        return [value] * len(frame)
    return predict

for value in (1, 2):
    with open(f"{sys.argv[1]}/v{value}.pkl", "wb") as handle:
        cloudpickle.dump(constant(float(value)), handle)
"""


def _ours() -> dict[str, set[str]]:
    return {kind: {name for name in names if NAME in name}
            for kind, names in engine_snapshot().items()}


def _registered(stack: Path) -> list[dict[str, object]]:
    listed = swarmai("models", "list", str(stack), "-t", "compose", "--offline", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    found: list[dict[str, object]] = json.loads(listed.stdout)
    return found


def _served(stack: Path) -> str:
    status = swarmai("status", str(stack), "-t", "compose", "-o", "json")
    assert status.returncode == 0, status.stderr
    return next(str(r["version"]) for r in json.loads(status.stdout) if r["model"] == "alpha")


def test_compose_sqlite_backup_down_up_restore(tmp_path: Path,
                                              offline_images: dict[str, str]) -> None:
    stack = tmp_path / f"{NAME}.yaml"
    stack.write_text(STACK)
    folder = ["--state-dir", str(tmp_path / "state")]
    up = ["--offline", *folder]
    state = ["-t", "compose", *up]
    before = _ours()
    subprocess.run([sys.executable, "-c", MAKE_MODELS, str(tmp_path)], check=True)
    try:
        assert swarmai("up", str(stack), *up).returncode == 1  # empty registry
        for pickle, alias in (("v1", "production"), ("v2", "staging")):
            pushed = swarmai("models", "push", str(stack), "alpha", str(tmp_path / f"{pickle}.pkl"),
                             "--alias", alias, "-t", "compose", "--offline")
            assert pushed.returncode == 0, pushed.stderr
        started = swarmai("up", str(stack), *up)
        assert started.returncode == 0, started.stderr
        served, registered = _served(stack), _registered(stack)
        assert served == "1" and len(registered) == 2

        made = swarmai("backup", str(stack), str(tmp_path / "backups"), *state)
        assert made.returncode == 0, made.stderr
        snapshot = Path(made.stdout.strip())
        manifest = json.loads((snapshot / "manifest.json").read_text())
        assert manifest["backend_store"] == "sqlite" and manifest["database"]["file"] == \
            "registry.sqlite"

        assert swarmai("down", str(stack), "--volumes", *folder).returncode == 0
        assert swarmai("up", str(stack), *up).returncode == 1  # empty again
        restored = swarmai("restore", str(stack), str(snapshot), *state)
        assert restored.returncode == 0, restored.stderr
        assert "not running yet: model-alpha" in restored.stdout
        assert _registered(stack) == registered
        again = swarmai("up", str(stack), *up)
        assert again.returncode == 0, again.stderr
        assert _served(stack) == served
    finally:
        removed = swarmai("down", str(stack), "--volumes", *folder)
        assert removed.returncode == 0, removed.stderr
        assert _ours() == before
