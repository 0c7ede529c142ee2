"""swarmai installed as a wheel (`pip install .` into a clean venv), run from
another directory, does what the README shows: builds the images (the very
same tags as the checkout), renders the same files, and runs a stack with
`up` (Compose) and `deploy` (Swarm) that answers predictions."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lifecycle import https_url, post, write_stack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


class WheelCli:
    """The `swarmai` of a wheel venv, run from a directory outside the checkout."""

    def __init__(self, venv: Path, cwd: Path) -> None:
        self.venv, self.cwd = venv, cwd
        self.env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        self.env["PATH"] = f"{venv / 'bin'}:" + ":".join(
            p for p in os.environ["PATH"].split(":") if ".venv" not in p)

    def __call__(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.venv / "bin" / "swarmai"), *args], cwd=self.cwd,
                              env=self.env, capture_output=True, text=True, timeout=timeout,
                              check=False)


def pinned_constraints(lock: Path, out: Path) -> Path:
    """requirements.lock without its hashes: pip refuses hashes in a constraints file."""
    pins = re.findall(r"^([A-Za-z0-9_.\[\]-]+==\S+)", lock.read_text(), re.M)
    out.write_text("\n".join(pins) + "\n")
    return out


@pytest.fixture(scope="module")
def wheel_cli(tmp_path_factory: pytest.TempPathFactory,
              offline_images: dict[str, str]) -> WheelCli:
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w",
                    str(work / "dist"), str(REPO)], check=True, timeout=600)
    (wheel,) = (work / "dist").glob("swarmai-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    constraints = pinned_constraints(REPO / "requirements.lock", work / "constraints.txt")
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                    "-c", str(constraints), f"{wheel}[examples]"], check=True, timeout=900)
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    return WheelCli(venv, elsewhere)


def test_the_wheel_is_not_the_checkout(wheel_cli: WheelCli) -> None:
    code = "import swarmai, swarmai.assets as a; print(swarmai.__file__, a.folder('gateway'))"
    probe = subprocess.run(
        [str(wheel_cli.venv / "bin" / "python"), "-c", code],
        cwd=wheel_cli.cwd, env=wheel_cli.env, capture_output=True, text=True, check=True)
    package, gateway = probe.stdout.split()
    assert package.startswith(str(wheel_cli.venv)), package
    assert gateway.startswith(str(wheel_cli.venv)), gateway


def test_images_build_gives_the_checkouts_tags(wheel_cli: WheelCli,
                                               offline_images: dict[str, str]) -> None:
    built = wheel_cli("images", "build", "--offline", timeout=1800)
    assert built.returncode == 0, built.stderr[-3000:]
    tags = dict(re.findall(r"^([a-z-]+)\s+(swarmai/\S+:\S+)\s", built.stdout, re.M))
    tags.pop("base", None)
    assert tags == offline_images, built.stdout


@pytest.mark.parametrize(("stack", "target"), [("vision.yaml", "swarm"), ("dev.yaml", "compose")])
def test_render_is_the_checkouts(wheel_cli: WheelCli, tmp_path: Path, stack: str,
                                 target: str) -> None:
    from_wheel = wheel_cli("render", str(REPO / "stacks" / stack), "-t", target,
                           "-o", str(tmp_path / "wheel"))
    assert from_wheel.returncode == 0, from_wheel.stderr
    checkout = subprocess.run(
        [sys.executable, "-c", "from swarmai.cli import main; main()", "render",
         str(REPO / "stacks" / stack), "-t", target, "-o", str(tmp_path / "checkout")],
        capture_output=True, text=True, check=True)
    assert checkout.returncode == 0
    files = sorted(p.relative_to(tmp_path / "wheel") for p in (tmp_path / "wheel").rglob("*")
                   if p.is_file())
    assert files
    for relative in files:
        assert (tmp_path / "wheel" / relative).read_bytes() == \
            (tmp_path / "checkout" / relative).read_bytes(), relative


@pytest.fixture
def stopped_after(wheel_cli: WheelCli) -> Iterator[list[tuple[str, ...]]]:
    """Commands that remove what a test started; each must succeed, or a later
    run would find the stack (and its registered models) still there."""
    teardown: list[tuple[str, ...]] = []
    yield teardown
    for command in teardown:
        result = wheel_cli(*command)
        assert result.returncode == 0, (command, result.stderr[-2000:])


@pytest.mark.parametrize(("target", "start", "stop", "port"), [
    ("compose", "up", "down", 18496), ("swarm", "deploy", "rm", 18497)])
def test_a_stack_serves_from_the_wheel(wheel_cli: WheelCli, tmp_path: Path,
                                       example_models: dict[str, Any],
                                       stopped_after: list[tuple[str, ...]],
                                       target: str, start: str, stop: str, port: int) -> None:
    stack = write_stack(tmp_path, f"e2ewheel{target[0]}", port)
    state = ("--state-dir", str(tmp_path / "state"))
    # `rm` finds a Swarm stack by name; only `down` needs the Compose files.
    stopped_after.append((stop, str(stack), "--volumes", *(state if stop == "down" else ())))
    first = wheel_cli(start, str(stack), "--offline", *state)
    assert first.returncode == 1, first.stderr[-3000:]
    assert "not in its registry yet" in first.stderr
    for name in ("iris", "churn"):
        pushed = wheel_cli("models", "push", str(stack), name,
                           str(example_models["paths"][name]), "--alias", "production",
                           "-t", target, "--offline")
        assert pushed.returncode == 0, pushed.stderr[-3000:]
    started = wheel_cli(start, str(stack), "--offline", *state)
    assert started.returncode == 0, started.stderr[-3000:]
    status, body, _ = post(https_url(port, "/churn/v1/predict"),
                           {"dataframe_records": [{"support_calls": 3, "tenure_months": 5}]})
    assert (status, body["predictions"]) == (200, [0.2])
