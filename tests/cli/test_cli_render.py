"""The render and nodes commands through click, as a user calls them."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from swarmai.cli import cli

REPO = Path(__file__).resolve().parents[2]
VISION = str(REPO / "stacks" / "vision.yaml")


def test_render_writes_the_bundle_and_is_idempotent(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "vision"
    first = runner.invoke(cli, ["render", VISION, "-t", "swarm", "-o", str(out), "--no-ipvs"])
    assert first.exit_code == 0, first.output
    assert "10 new" in first.output
    stack = yaml.safe_load((out / "stack.yml").read_text())
    assert stack["services"]["gateway"]["deploy"]["endpoint_mode"] == "dnsrr"
    second = runner.invoke(cli, ["render", VISION, "-t", "swarm", "-o", str(out), "--no-ipvs"])
    assert "0 new, 0 changed, 10 unchanged, 0 removed" in second.output


def test_render_of_an_invalid_stack_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: Bad\nmodels: []\n")
    result = CliRunner().invoke(cli, ["render", str(bad), "-t", "compose", "-o",
                                      str(tmp_path / "out")])
    assert result.exit_code == 2
    assert f"{bad}: name:" in result.output
    assert not (tmp_path / "out").exists()
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_render_refuses_a_manifest_naming_a_file_outside_with_exit_2(tmp_path: Path) -> None:
    out, precious = tmp_path / "vision", tmp_path / "precious"
    precious.write_text("keep me")
    out.mkdir()
    (out / ".swarmai-rendered.json").write_text(json.dumps(["../precious"]))
    result = CliRunner().invoke(cli, ["render", VISION, "-t", "swarm", "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert f"{out}/.swarmai-rendered.json: '../precious' is not a path inside" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert precious.read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir()) == [".swarmai-rendered.json"]


def test_render_dry_run_writes_nothing(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["render", VISION, "-t", "swarm", "-o",
                                      str(tmp_path / "o"), "--dry-run"])
    assert result.exit_code == 0
    assert "would write" in result.output
    assert not (tmp_path / "o").exists()


def test_nodes_config_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["nodes", "config", VISION, "-o", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["gpu-b"]["daemon_json"]["node-generic-resources"] == ["swarmai-gpu-gpu-b-0=1"]
    assert 'swarm-resource = ""' in data["gpu-a"]["nvidia_config_toml"]


def test_every_command_help_shows_examples() -> None:
    runner = CliRunner()
    for args in (["--help"], ["validate", "--help"], ["render", "--help"],
                 ["nodes", "config", "--help"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0
        assert "Examples:" in result.output, args
