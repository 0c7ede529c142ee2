"""`swarmai secrets rotate -t compose`: the database password of a Compose registry.

The registry is up (the first `up` stops at the empty registry) with one model
pushed -> the password is rotated: the secret file holds a new value, no
NAME.next is left, Postgres refuses the old value and takes the new one, and
MLflow (re-created) answers reads and writes -> down --volumes leaves the
engine as found.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from lifecycle import engine_snapshot, swarmai
from test_secret_rotation import MAKE_MODEL, STACK, database_takes, docker, registry_answers

pytestmark = pytest.mark.e2e

NAME = "e2erotc"
DB = f"{NAME}-db"


def ours() -> dict[str, set[str]]:
    """What this test's project has on the engine: other tests share it."""
    return {kind: {n for n in names if NAME in n} for kind, names in engine_snapshot().items()}


def test_rotating_the_database_password_on_compose(tmp_path: Path,
                                                   offline_images: dict[str, str]) -> None:
    stack = tmp_path / f"{NAME}.yaml"
    stack.write_text(STACK.replace("e2erot", NAME))
    state = ["-t", "compose", "--state-dir", str(tmp_path / "state")]
    before = ours()
    model = tmp_path / "model.pkl"
    subprocess.run([sys.executable, "-c", MAKE_MODEL, str(model), "7"], check=True)
    try:
        first = swarmai("up", str(stack), "--offline", *state[2:])
        assert first.returncode == 1 and "not in its registry yet" in first.stderr, first.stderr
        pushed = swarmai("models", "push", str(stack), "scorer", str(model), "--alias",
                         "production", "--offline", "-t", "compose")
        assert pushed.returncode == 0, pushed.stderr
        secret = tmp_path / "state" / "secrets" / DB
        old = secret.read_text()
        rotated = swarmai("secrets", "rotate", str(stack), DB, *state)
        assert rotated.returncode == 0, rotated.stderr
        new = secret.read_text()
        assert new != old
        assert not (secret.parent / f"{DB}.next").exists()
        postgres = docker("ps", "-q", "--filter", f"label=com.docker.compose.project={NAME}",
                          "--filter", "label=com.docker.compose.service=postgres").stdout.strip()
        assert not database_takes(old, postgres)
        assert database_takes(new, postgres)
        pushed = swarmai("models", "push", str(stack), "scorer", str(model), "--alias",
                         "staging", "--offline", "-t", "compose")
        assert pushed.returncode == 0, pushed.stderr
        assert registry_answers(stack, "-t", "compose") == {"1": ["production", "staging"]}
    finally:
        down = swarmai("down", str(stack), "--volumes", *state[2:])
        assert down.returncode == 0, down.stderr
    assert ours() == before
