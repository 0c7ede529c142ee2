"""Every example stack, rendered by the installed CLI, passes Docker's own validators.

`docker compose config -q` and `docker stack config` are the engine's schema
checks for Compose and Swarm files; a rendered file they reject would fail at
deploy time.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
STACKS = sorted((REPO / "stacks").glob("*.yaml"))
SWARMAI = [sys.executable, "-c", "from swarmai.cli import main; main()"]


def _run(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("stack", STACKS, ids=lambda p: p.stem)
def test_every_example_validates(stack: Path) -> None:
    result = _run([*SWARMAI, "validate", str(stack)])
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("stack", STACKS, ids=lambda p: p.stem)
def test_compose_rendering_passes_docker_compose_config(
    stack: Path, tmp_path: Path, docker_cli: str
) -> None:
    rendered = _run([*SWARMAI, "render", str(stack), "-t", "compose", "-o", str(tmp_path)])
    assert rendered.returncode == 0, rendered.stderr
    check = _run([docker_cli, "compose", "-f", "compose.yml", "config", "-q"], cwd=tmp_path)
    assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("ipvs", ["--ipvs", "--no-ipvs"])
@pytest.mark.parametrize("stack", STACKS, ids=lambda p: p.stem)
def test_swarm_rendering_passes_docker_stack_config(
    stack: Path, ipvs: str, tmp_path: Path, docker_cli: str
) -> None:
    rendered = _run([*SWARMAI, "render", str(stack), "-t", "swarm", "-o", str(tmp_path), ipvs])
    assert rendered.returncode == 0, rendered.stderr
    check = _run([docker_cli, "stack", "config", "-c", "stack.yml"], cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert "start_interval" in check.stdout, "healthcheck.start_interval was dropped"


def test_a_broken_file_is_rejected_by_the_validator(tmp_path: Path, docker_cli: str) -> None:
    # Guards the guard: the validator call above must be able to fail.
    (tmp_path / "stack.yml").write_text(
        "version: '3.12'\nservices:\n  a:\n    image: x\n    gpus: all\n")
    check = _run([docker_cli, "stack", "config", "-c", "stack.yml"], cwd=tmp_path)
    assert check.returncode != 0
