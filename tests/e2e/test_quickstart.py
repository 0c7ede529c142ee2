"""The README's first command, run word for word, ends with a prediction answered
through the gateway of the dev stack; run again, it changes nothing and still does."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from swarmai import tlsca

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SWARMAI = [sys.executable, "-c", "from swarmai.cli import main; main()"]


def first_command() -> str:
    """The first line of the README's first shell block, without its comment."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## First commands", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README's First commands section has no sh block"
    return block.group(1).splitlines()[0].split("#", 1)[0].strip()


def run_first_command() -> subprocess.CompletedProcess[str]:
    # The venv's bin first, as for a user who has not activated anything: the
    # script must find its own tools.
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = ":".join(p for p in env["PATH"].split(":") if ".venv" not in p)
    return subprocess.run(["bash", "-c", first_command()], cwd=REPO, env=env, text=True,
                          capture_output=True, timeout=1200, check=False)


@pytest.fixture
def dev_stack(offline_images: dict[str, str]) -> Iterator[Path]:
    stack = REPO / "stacks" / "dev.yaml"
    yield stack
    subprocess.run([*SWARMAI, "down", str(stack), "--volumes"], cwd=REPO,
                   capture_output=True, timeout=300, check=False)


def prediction(result: subprocess.CompletedProcess[str]) -> list[float]:
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    predictions = answer["predictions"]
    assert isinstance(predictions, list)
    return predictions


def test_first_command_ends_with_a_prediction(dev_stack: Path) -> None:
    assert first_command() == "scripts/quickstart.sh"
    first = run_first_command()
    # churn's hand-written score: 0.1 per support call minus 0.02 per month of tenure.
    assert prediction(first) == [0.2]
    # The curl it hands over trusts swarmai's local CA, and talks HTTPS.
    ca = tlsca.ca_dir() / tlsca.CA_CERT
    assert f"curl -s --cacert {ca} https://localhost:8443/churn/v1/predict" in first.stderr
    again = run_first_command()
    assert prediction(again) == [0.2]
    # The second run found everything in place: no model pushed again.
    assert "registering the example models" not in again.stderr
