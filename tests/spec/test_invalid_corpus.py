"""The invalid corpus: tests/spec/invalid/*.yaml, one broken rule per file.

Each file starts with a header of comments:

* ``# expect: <yaml.path>`` (first line): the path of the one problem the file
  must produce; ``<none>`` for a problem about the whole file (empty path).
* ``# target: swarm|compose`` (optional): passed as ``--target``.
* ``# contains: <text>`` (optional, repeatable): text the report must contain,
  e.g. a did-you-mean hint, or ``line``/``column`` of a YAML syntax error.

Every file is run through the real console entry point in a subprocess (one
interpreter for the whole corpus: a start per file cost a minute) and through
``load_stack`` in-process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from swarmai.cli import cli
from swarmai.errors import SpecError
from swarmai.spec import load_stack

CORPUS = Path(__file__).resolve().parent / "invalid"
FILES = sorted(CORPUS.glob("*.yaml"))
NO_PATH = "<none>"


@dataclass(frozen=True)
class Expectation:
    path: str  # "" for a whole-file problem
    target: str | None
    contains: tuple[str, ...]


def expectation(file: Path) -> Expectation:
    lines = file.read_text(encoding="utf-8").splitlines()
    assert lines and lines[0].startswith("# expect: "), f"{file.name}: first line must be # expect:"
    path = lines[0].removeprefix("# expect: ").strip()
    target = None
    contains: list[str] = []
    for line in lines[1:]:
        if not line.startswith("# "):
            break
        key, _, value = line[2:].partition(": ")
        if key == "target":
            assert value in ("swarm", "compose"), f"{file.name}: bad target {value!r}"
            target = value
        elif key == "contains":
            contains.append(value)
    return Expectation("" if path == NO_PATH else path, target, tuple(contains))


def cli_args(file: Path, expect: Expectation, *extra: str) -> list[str]:
    args = ["validate", str(file), *extra]
    return [*args, "--target", expect.target] if expect.target else args


# Runs main() once per argument list read from stdin, as the console script
# would, and writes what each run printed and its exit code.  An exception that
# escapes main() is printed as the interpreter would print it: a traceback.
_ENTRY_POINT_LOOP = """
import contextlib, io, json, sys, traceback
from swarmai.cli import main
results = []
for args in json.load(sys.stdin):
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        sys.argv = ["swarmai", *args]
        try:
            main()
        except SystemExit as exit_:  # as the interpreter maps it: None is 0, text is 1
            code = 0 if exit_.code is None else exit_.code if isinstance(exit_.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
    results.append([code, out.getvalue(), err.getvalue()])
json.dump(results, sys.__stdout__)
"""


def run_cli_each(runs: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    """Each argument list through the real console entry point, in one fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", _ENTRY_POINT_LOOP], input=json.dumps(runs),
                          capture_output=True, text=True, timeout=300, check=True)
    return [subprocess.CompletedProcess(args, code, out, err)
            for args, (code, out, err) in zip(runs, json.loads(done.stdout), strict=True)]


@pytest.fixture(scope="module")
def cli_results() -> dict[Path, subprocess.CompletedProcess[str]]:
    """Every corpus file through the console entry point once."""
    runs = run_cli_each([cli_args(f, expectation(f)) for f in FILES])
    return dict(zip(FILES, runs, strict=True))


def test_corpus_is_large_enough() -> None:
    assert len(FILES) >= 30


def test_corpus_files_are_distinct() -> None:
    bodies = [f.read_text(encoding="utf-8").split("\n", 1)[1] for f in FILES if f.stat().st_size]
    assert len(set(bodies)) == len(bodies)


@pytest.mark.parametrize("file", FILES, ids=[f.stem for f in FILES])
def test_cli_rejects_with_located_problem(
    file: Path, cli_results: dict[Path, subprocess.CompletedProcess[str]]
) -> None:
    expect = expectation(file)
    result = cli_results[file]

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    if expect.path:
        assert f"{file}: {expect.path}: " in result.stderr
    else:
        assert result.stderr.startswith(f"{file}: ")
    for text in expect.contains:
        assert text in result.stderr


@pytest.mark.parametrize("file", FILES, ids=[f.stem for f in FILES])
def test_load_stack_reports_exactly_the_broken_rule(file: Path) -> None:
    expect = expectation(file)
    with pytest.raises(SpecError) as caught:
        load_stack(file, expect.target)  # type: ignore[arg-type]
    problems = caught.value.problems
    # Exactly one problem: the file breaks one rule, and the rule reports it once.
    assert [p.path for p in problems] == [expect.path], [str(p) for p in problems]
    assert all(p.file == str(file) for p in problems)
    report = str(caught.value)
    for text in expect.contains:
        assert text in report


@pytest.mark.parametrize("file", FILES, ids=[f.stem for f in FILES])
def test_json_report_locates_the_problem(file: Path) -> None:
    expect = expectation(file)
    result = CliRunner().invoke(cli, cli_args(file, expect, "--output", "json"))
    assert result.exit_code == 2, result.output
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert [p["path"] for p in report["problems"]] == [expect.path]
    assert all(p["file"] == str(file) and p["message"] for p in report["problems"])
