"""Real-engine tests.  scripts/test.sh installs the engine first; in CI nothing here skips."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


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


@pytest.fixture(scope="session")
def offline_images(docker_cli: str) -> dict[str, str]:
    """Every image a stack needs, built locally (minutes cold, seconds when present)."""
    from swarmai.engine import Engine
    from swarmai.images import build_images, image_tags

    build_images(Engine.from_env(), offline=True)
    return image_tags(offline=True)


@pytest.fixture(scope="session")
def example_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The two example models (registry/examples/make_models.py), pickled and in memory."""
    import importlib.util

    script = REPO / "registry" / "examples" / "make_models.py"
    spec = importlib.util.spec_from_file_location("make_models", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_models"] = module
    spec.loader.exec_module(module)
    paths = module.write_models(tmp_path_factory.mktemp("models"))
    return {"paths": paths, "iris": module.iris_model(), "churn": module.churn_score}
