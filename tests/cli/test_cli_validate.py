"""`swarmai validate`, driven through click's CliRunner."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from swarmai.cli import cli

REPO = Path(__file__).resolve().parents[2]
VISION = REPO / "stacks" / "vision.yaml"

Write = Callable[..., Path]

NO_NODES = """\
    version: 1
    name: demo
    models:
      - {name: a, runtime: fastapi, model: models:/a/1, gpus: {devices: ["0"]}}
"""

THREE_PROBLEMS = """\
    version: 1
    name: Demo
    gateway: {port: 0, prot: 1}
    models:
      - {name: a, runtime: fastapi, model: models:/a/1}
"""


def validate(*args: str) -> Result:
    return CliRunner().invoke(cli, ["validate", *args])


def no_traceback(result: Result) -> bool:
    return "Traceback" not in result.output and (
        result.exception is None or isinstance(result.exception, SystemExit)
    )


def test_valid_file_exits_0() -> None:
    result = validate(str(VISION))
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"{VISION}: valid for swarm (3 models, 2 pinned GPUs)\n"
        "registry data on Swarm: the node labelled swarmai.state.vision=true (deploy labels "
        "the manager it runs on the first time; set registry.node to choose)\n")
    assert result.stderr == ""


def test_valid_file_summary_for_compose(write_stack: Write) -> None:
    path = write_stack(NO_NODES)
    result = validate(str(path))
    assert result.exit_code == 0
    assert result.stdout == f"{path}: valid for compose (1 model, 1 pinned GPU)\n"


@pytest.mark.parametrize("flag", ["--target", "-t"])
def test_target_option_overrides_auto_selection(write_stack: Write, flag: str) -> None:
    result = validate(str(VISION), flag, "compose")
    assert result.exit_code == 0
    assert "valid for compose" in result.stdout
    # The same file fails the other target's rules: no node named on Swarm.
    result = validate(str(write_stack(NO_NODES)), flag, "swarm")
    assert result.exit_code == 2
    assert "models[0].gpus.node: " in result.stderr


def test_unknown_target_is_a_usage_error() -> None:
    result = validate(str(VISION), "--target", "kubernetes")
    assert result.exit_code == 2
    assert "Invalid value for '--target'" in result.stderr


def test_invalid_file_lists_every_problem_on_stderr(write_stack: Write) -> None:
    path = write_stack(THREE_PROBLEMS)
    result = validate(str(path))
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 3
    assert all(line.startswith(f"{path}: ") for line in lines)
    assert f"{path}: gateway.prot: unknown key 'prot' (did you mean 'port'?)" in lines
    assert no_traceback(result)


def test_json_valid() -> None:
    result = validate(str(VISION), "--output", "json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report == {"valid": True, "target": "swarm", "problems": [],
                      "registry_data": report["registry_data"]}
    assert report["registry_data"].startswith("the node labelled swarmai.state.vision=true")


def test_json_valid_with_target() -> None:
    result = validate(str(VISION), "-o", "json", "-t", "compose")
    assert json.loads(result.stdout)["target"] == "compose"


def test_json_invalid(write_stack: Write) -> None:
    path = write_stack(THREE_PROBLEMS)
    result = validate(str(path), "--output", "json")
    assert result.exit_code == 2
    assert result.stderr == ""  # the report is the output; nothing else
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert "target" not in report
    problems = report["problems"]
    assert sorted(p["path"] for p in problems) == ["gateway.port", "gateway.prot", "name"]
    for problem in problems:
        assert set(problem) == {"file", "path", "message", "hint"}
        assert problem["file"] == str(path)
        assert problem["message"]
    hints = {p["path"]: p["hint"] for p in problems}
    assert hints["gateway.prot"] == "did you mean 'port'?"


def test_json_yaml_syntax_error(write_stack: Write) -> None:
    result = validate(str(write_stack("version: [1\n")), "-o", "json")
    assert result.exit_code == 2
    (problem,) = json.loads(result.stdout)["problems"]
    assert problem["path"] == ""
    assert problem["message"].startswith("YAML syntax error at line 2, column 1: ")


def test_nonexistent_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = validate(str(missing))
    assert result.exit_code == 2
    assert result.stderr == f"{missing}: file not found (check the path)\n"
    assert no_traceback(result)


def test_nonexistent_file_json(tmp_path: Path) -> None:
    result = validate(str(tmp_path / "nope.yaml"), "-o", "json")
    assert result.exit_code == 2
    (problem,) = json.loads(result.stdout)["problems"]
    assert (problem["path"], problem["message"]) == ("", "file not found")


def test_directory_is_reported(tmp_path: Path) -> None:
    result = validate(str(tmp_path))
    assert result.exit_code == 2
    assert "cannot be read" in result.stderr
    assert no_traceback(result)


def test_missing_argument_is_a_usage_error() -> None:
    result = validate()
    assert result.exit_code == 2
    assert "Missing argument 'FILE'" in result.stderr


def test_unknown_output_format() -> None:
    result = validate(str(VISION), "--output", "yaml")
    assert result.exit_code == 2
    assert "Invalid value for '--output'" in result.stderr


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_shows_examples(flag: str) -> None:
    result = validate(flag)
    assert result.exit_code == 0
    assert "Examples" in result.stdout
    assert "swarmai validate stacks/vision.yaml" in result.stdout
    assert "--target" in result.stdout and "--output" in result.stdout


def test_group_help_shows_examples() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "Examples" in result.stdout
    assert "validate" in result.stdout


def test_relative_path_is_echoed_as_given(
    write_stack: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_stack(NO_NODES, "rel.yaml")
    monkeypatch.chdir(path.parent)
    result = validate("rel.yaml")
    assert result.stdout.startswith("rel.yaml: valid for compose")
