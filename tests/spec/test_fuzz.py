"""Fuzzing `swarmai validate`: whatever the file holds, exit 0 or 2, never a traceback.

Profiles (tests/conftest.py): "dev" runs 200 examples per test, "ci" (CI set) 2,000.
Files are written with tempfile, not tmp_path: a function-scoped fixture would be
shared by every example of a Hypothesis test.
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner, Result
from hypothesis import event, given, note
from hypothesis import strategies as st

from swarmai.cli import cli

VISION = Path(__file__).resolve().parents[2] / "stacks" / "vision.yaml"
REFERENCE: dict[str, Any] = yaml.safe_load(VISION.read_text(encoding="utf-8"))

# A JSON-ish value: what a careless edit of a stack file can put anywhere.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # small and negative
    st.integers(min_value=-(2**128), max_value=2**128),  # huge
    st.sampled_from([0, 1, -1, 65535, 65536, 4096, 4097, 60_000, 60_001]),  # bounds
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=50),  # unicode, empty
    st.sampled_from(["", "0", "1", "-1", "auto", "true", "latest", "/", "//", "models:/x/1",
                     "models:/x@latest", "GPU-", "1.5", "2G", "nan", "inf", "gpu-a", "~"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=12), inner, max_size=4),
    ),
    max_leaves=12,
)

Path_ = tuple[str | int, ...]


def containers(doc: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every dict and list in ``doc`` with its path, the root first."""
    if isinstance(doc, dict | list):
        yield path, doc
        items = doc.items() if isinstance(doc, dict) else enumerate(doc)
        for key, child in items:
            yield from containers(child, (*path, key))


@st.composite
def mutated_reference(draw: st.DrawFn) -> dict[str, Any]:
    """The reference example with a few random edits."""
    doc = copy.deepcopy(REFERENCE)
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        found = list(containers(doc))
        where, node = draw(st.sampled_from(found), label="container")
        edit = draw(st.sampled_from(["delete", "replace", "add-key", "duplicate"]))
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if edit == "delete" and keys:
            key = draw(st.sampled_from(keys))
            del node[key]
        elif edit == "replace" and keys:
            key = draw(st.sampled_from(keys))
            node[key] = draw(values)
        elif edit == "add-key" and isinstance(node, dict):
            known = ["name", "gpus", "devices", "node", "share", "route", "replicas", "port",
                     "dashboard", "endpoint", "backend", "traefik", "gpu-c", "models"]
            key = draw(st.one_of(st.sampled_from(known), st.text(max_size=12)))
            node[key] = draw(values)
        elif edit == "duplicate" and isinstance(node, list) and node:
            node.append(copy.deepcopy(draw(st.sampled_from(node))))
        note(f"{edit} at {where}")
    return doc


@contextmanager
def stack_file(content: str) -> Iterator[str]:
    handle, name = tempfile.mkstemp(suffix=".yaml", prefix="fuzz-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", errors="surrogatepass") as out:
            out.write(content)
        yield name
    finally:
        os.unlink(name)


def assert_clean_exit(result: Result) -> None:
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output


@given(mutated_reference())
def test_mutated_reference_exits_cleanly(doc: dict[str, Any]) -> None:
    with stack_file(yaml.safe_dump(doc, allow_unicode=True)) as path:
        result = CliRunner().invoke(cli, ["validate", path])
        assert_clean_exit(result)
        json_result = CliRunner().invoke(cli, ["validate", path, "--output", "json"])
        assert_clean_exit(json_result)
        assert json_result.exit_code == result.exit_code
    event(f"exit {result.exit_code}")


@given(st.text())
def test_arbitrary_text_exits_cleanly(text: str) -> None:
    with stack_file(text) as path:
        result = CliRunner().invoke(cli, ["validate", path])
    assert_clean_exit(result)
    event(f"exit {result.exit_code}")


def test_reference_is_valid_before_mutation() -> None:
    # Otherwise the mutation test would only ever see invalid stacks.
    with stack_file(yaml.safe_dump(REFERENCE)) as path:
        result = CliRunner().invoke(cli, ["validate", path])
    assert result.exit_code == 0, result.output
