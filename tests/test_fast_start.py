"""`swarmai validate` and `render` stay light: they never import the Docker
clients, MLflow or the data stack, so they answer at the speed of click, PyYAML
and pydantic.  (How fast that is gets measured in bench/startup.py, not here.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("docker", "python_on_whales", "mlflow", "requests", "pandas", "numpy", "minio")
PROBE = """
import json, sys
from swarmai.cli import cli
try:
    cli(sys.argv[1:], prog_name="swarmai")
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def imported_by(*args: str, cwd: Path = REPO) -> tuple[int, set[str]]:
    result = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True,
                            text=True, check=True)
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    return answer["code"], set(answer["modules"])


@pytest.mark.parametrize("args", [
    ("validate", "stacks/vision.yaml"),
    ("validate", "stacks/dev.yaml", "--output", "json"),
    ("render", "stacks/vision.yaml", "-t", "swarm", "-o", "OUT"),
    ("render", "stacks/dev.yaml", "-t", "compose", "-o", "OUT", "--dry-run"),
])
def test_spec_commands_import_nothing_heavy(args: tuple[str, ...], tmp_path: Path) -> None:
    code, modules = imported_by(*(str(tmp_path / "out") if a == "OUT" else a for a in args))
    assert code == 0
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


def test_the_probe_sees_heavy_imports() -> None:
    """The check above can fail: a command that talks to Docker does import it."""
    _, modules = imported_by("status", "/nonexistent.yaml")
    assert "python_on_whales" in modules or "docker" in modules
