"""Real-engine tests.  scripts/test.sh installs the engine first; in CI nothing here skips."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


@pytest.fixture(scope="session")
def docker_cli() -> str:
    """The docker client with the Compose v2 plugin; fails (never skips) in CI without it."""
    docker = shutil.which("docker")
    usable = docker is not None and subprocess.run(
        [docker, "compose", "version"], capture_output=True, check=False
    ).returncode == 0
    if not usable:
        message = "docker with Compose v2 is missing: run scripts/test.sh (it installs the engine)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    assert docker is not None
    return docker
