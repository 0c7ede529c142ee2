"""The README's example session is real: each `$ swarmai ...` line is run and its
output compared with the lines that follow it in the README."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BROKEN = """\
version: 1
name: Vision
nodes:
  gpu-a: {gpus: ["0"]}
models:
  - name: resnet
    runtime: torchserv
    model: models:/resnet@production
    gpus: {node: gpu-b, devices: ["0"]}
    replicass: 2
"""


def _session() -> list[tuple[str, list[str]]]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```console\n(.*?)```", text, re.S)
    assert block, "README has no console session"
    steps: list[tuple[str, list[str]]] = []
    for line in block.group(1).splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


def test_readme_session_output_is_what_the_commands_print(tmp_path: Path) -> None:
    shutil.copytree(REPO / "stacks", tmp_path / "stacks")
    (tmp_path / "stacks" / "broken.yaml").write_text(BROKEN)
    steps = _session()
    assert len(steps) >= 4
    for command, expected in steps:
        args = command.split()
        assert args[0] == "swarmai"
        result = subprocess.run(
            [sys.executable, "-c", "from swarmai.cli import main; main()", *args[1:]],
            cwd=tmp_path, capture_output=True, text=True, check=False,
        )
        printed = (result.stdout + result.stderr).splitlines()
        printed = [line for line in printed if line]
        assert printed == expected, command
