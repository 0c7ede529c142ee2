"""Regression tests for bugs found in swarmai.spec by the test corpus and fuzzing.

Each test states the behaviour the spec layer must keep; the constant above a
group of tests says what used to go wrong.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from swarmai.cli import cli
from swarmai.errors import SpecError
from swarmai.spec import load_stack

Write = Callable[..., Path]

VISION = Path(__file__).resolve().parents[2] / "stacks" / "vision.yaml"

MINIMAL = "version: 1\nname: demo\nmodels:\n  - {name: a, runtime: fastapi, model: models:/a/1}\n"


# --- load.py _read_yaml: YAML constructor errors escape as tracebacks ------------

YAML_CONSTRUCTOR_CRASH = (
    "WAS: load.py _read_yaml catches only yaml.YAMLError, but SafeLoader "
    "constructors raise plain ValueError for scalars that match a tag's pattern and "
    "are not valid values; the CLI exits 1 with a traceback instead of 2 with a problem"
)


@pytest.mark.parametrize(
    "value",
    [
        "2020-13-45",  # implicit timestamp, month 13
        "2021-02-30",  # implicit timestamp, no such day
        "!!int abc",
        "!!float abc",
        "9" * 5000,  # int over Python's 4300-digit str->int limit
    ],
)
def test_invalid_typed_scalar_is_a_problem(write_stack: Write, value: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_stack(write_stack(MINIMAL + f"extra: {value}\n"))
    assert caught.value.problems[0].path == ""


def test_cli_reports_invalid_timestamp_without_traceback(write_stack: Write) -> None:
    path = write_stack(MINIMAL.replace("name: demo", "name: 2020-13-45"))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == 2


DEEP_MAPPINGS = (
    "WAS: load.py _construct_mapping replaces SafeLoader's generator constructor for "
    "mappings (construct_yaml_map: `data = {}; yield data; data.update(...)`, which "
    "the constructor runs iteratively) with a plain function, so each nested mapping "
    "recurses: ~300 levels of {a: {a: ...}} raise RecursionError (traceback, exit 1). "
    "Make it a generator: build the dict, yield it, then check and fill it"
)


def test_deeply_nested_mappings_are_a_problem(write_stack: Write) -> None:
    with pytest.raises(SpecError) as caught:
        load_stack(write_stack(MINIMAL + "extra: " + "{a: " * 1000 + "1" + "}" * 1000 + "\n"))
    (problem,) = caught.value.problems
    assert "nests deeper than" in problem.message and "line 5" in problem.message


def test_deeply_nested_sequences_are_a_problem(write_stack: Write) -> None:
    with pytest.raises(SpecError) as caught:
        load_stack(write_stack(MINIMAL + "extra: " + "[" * 5000 + "]" * 5000 + "\n"))
    (problem,) = caught.value.problems
    assert "nests deeper than" in problem.message


def test_pathologically_deep_document_does_not_crash_the_process(write_stack: Write) -> None:
    depth = 100_000
    path = write_stack(MINIMAL + "extra: " + "[" * depth + "]" * depth + "\n")
    code = "from swarmai.cli import main; main()"
    result = subprocess.run([sys.executable, "-c", code, "validate", str(path)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2, (result.returncode, result.stderr[-500:])


PARSER_DEPTH_LIMIT = (
    "WAS: load.py _check_depth counted depth over parser events only; PyYAML 6.0.4's "
    "libyaml scans ahead over flow collections and refuses 1,000 levels first, in its own "
    "words, so a fresh install of PyYAML changed swarmai's message"
)


def test_parser_refusal_of_deep_nesting_is_worded_by_swarmai(
    write_stack: Write, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever a PyYAML release says about deep nesting, the problem reads the same."""

    def refuse(*_: object, **__: object) -> object:
        mark = yaml.Mark("<text>", 10**6, 4, 1000, None, None)  # past the brackets
        raise yaml.scanner.ScannerError("while scanning", mark, "some new wording", mark)

    path = write_stack(MINIMAL + "extra: " + "[" * 80 + "]" * 80 + "\n")
    monkeypatch.setattr(yaml, "parse", refuse)
    with pytest.raises(SpecError) as caught:
        load_stack(path)
    (problem,) = caught.value.problems
    assert "nests deeper than 64 levels at line 5" in problem.message, PARSER_DEPTH_LIMIT


def test_other_syntax_errors_keep_the_parser_words(write_stack: Write) -> None:
    with pytest.raises(SpecError) as caught:
        load_stack(write_stack(MINIMAL + 'extra: "' + "[" * 80 + '"\nmore: [[[\n'))
    (problem,) = caught.value.problems
    assert problem.message.startswith("YAML syntax error at line 7"), problem.message


MERGE_KEY = (
    "WAS: load.py _construct_mapping constructs every key node before SafeLoader "
    "flattens merge keys, so `<<: *anchor` (YAML merge keys, supported by SafeLoader) "
    "is reported as 'YAML syntax error ... could not determine a constructor for the "
    "tag tag:yaml.org,2002:merge'"
)


def test_merge_keys_are_supported(write_stack: Write) -> None:
    text = (
        "version: 1\nname: demo\nnodes: {gpu-a: {gpus: ['0']}}\n"
        "models:\n"
        "  - name: a\n    runtime: torchserve\n    model: models:/a/1\n"
        "    gpus: &shared {node: gpu-a, devices: ['0'], share: true}\n"
        "  - name: b\n    runtime: torchserve\n    model: models:/b/1\n"
        "    gpus: {<<: *shared}\n"
    )
    stack = load_stack(write_stack(text))
    assert stack.models[0].gpus == stack.models[1].gpus


def test_merged_key_may_be_overridden(write_stack: Write) -> None:
    text = (
        "version: 1\nname: demo\n"
        "models:\n"
        "  - &first {name: a, runtime: torchserve, model: models:/a/1}\n"
        "  - {<<: *first, name: b, model: models:/b/1}\n"
    )
    assert [m.name for m in load_stack(write_stack(text)).models] == ["a", "b"]


# --- models.py _matches / _model_uri: `$` accepts a trailing newline ---------------


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("name: demo", 'name: "demo\\n"', "name"),
        ("name: a,", 'name: "a\\n",', "models[0].name"),
        ("model: models:/a/1", 'model: "models:/a/1\\n"', "models[0].model"),
        ("model: models:/a/1}", 'model: models:/a/1, route: "/a\\n"}', "models[0].route"),
        ("model: models:/a/1}", 'model: models:/a/1, gpus: {devices: ["0\\n"]}}',
         "models[0].gpus.devices[0]"),
        ("model: models:/a/1}", 'model: models:/a/1, resources: {memory: "2G\\n"}}',
         "models[0].resources.memory"),
        ("name: demo", 'name: demo\ngateway: {auth: {basic_users_secret: "pw\\n"}}',
         "gateway.auth.basic_users_secret"),
        ("name: demo", 'name: demo\nimages: {traefik: "traefik:v3\\n"}', "images.traefik"),
    ],
)
def test_trailing_newline_is_refused(write_stack: Write, old: str, new: str, path: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_stack(write_stack(MINIMAL.replace(old, new, 1)))
    assert [p.path for p in caught.value.problems] == [path]


def test_block_scalar_name_is_refused(write_stack: Write) -> None:
    with pytest.raises(SpecError):
        load_stack(write_stack(MINIMAL.replace("name: demo", "name: |\n  demo")))


# --- models.py: values Docker refuses that the spec accepts ---------------------


@pytest.mark.parametrize("cpus", ['"1_0"', '" 2 "', '"\\t1.5"'])
def test_cpus_docker_cannot_parse_are_refused(write_stack: Write, cpus: str) -> None:
    text = MINIMAL.replace("models:/a/1}", f"models:/a/1, resources: {{cpus: {cpus}}}}}")
    with pytest.raises(SpecError):
        load_stack(write_stack(text))


@pytest.mark.parametrize("memory", ["1bb", "2BB"])
def test_memory_docker_cannot_parse_is_refused(write_stack: Write, memory: str) -> None:
    text = MINIMAL.replace("models:/a/1}", f"models:/a/1, resources: {{memory: {memory}}}}}")
    with pytest.raises(SpecError):
        load_stack(write_stack(text))


# --- models.py Stack: "immutable" model holds plain dicts --------------------------


IMMUTABLE = (
    "WAS: models.py Stack.nodes and Stack.images are Mapping[...] fields that pydantic "
    "fills with plain dicts, so a frozen Stack can still be mutated "
    "(stack.nodes['x'] = ...) and hash(stack) raises TypeError: unhashable type: 'dict'. "
    "Wrap them read-only (e.g. an AfterValidator returning MappingProxyType) or use "
    "tuples of pairs"
)


def test_node_inventory_cannot_be_mutated() -> None:
    stack = load_stack(VISION)
    with pytest.raises(TypeError):
        stack.nodes["gpu-c"] = stack.nodes["gpu-a"]  # type: ignore[index]
    with pytest.raises(TypeError):
        stack.images["traefik"] = "evil:latest"  # type: ignore[index]


def test_frozen_stack_is_hashable() -> None:
    assert hash(load_stack(VISION)) == hash(load_stack(VISION))


# --- checks.py: noise finding when gpus.node is missing on Swarm -----------------


def test_missing_node_is_not_also_reported_as_a_clash(write_stack: Write) -> None:
    text = (
        "version: 1\nname: demo\nnodes: {gpu-a: {gpus: ['0']}}\nmodels:\n"
        "  - {name: a, runtime: fastapi, model: models:/a/1, gpus: {devices: ['0']}}\n"
        "  - {name: b, runtime: fastapi, model: models:/b/1, gpus: {devices: ['0']}}\n"
    )
    with pytest.raises(SpecError) as caught:
        load_stack(write_stack(text))
    assert [p.path for p in caught.value.problems] == ["models[0].gpus.node",
                                                       "models[1].gpus.node"]
