"""deploy / up undo a promotion that died half-way (lifecycle/interrupted.py), on the
in-memory registry the promotion tests use: the alias back, the records gone, in an
order whose every prefix a re-run finishes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from swarmai import modeluri
from swarmai.errors import OperationError
from swarmai.lifecycle.interrupted import undo_interrupted
from swarmai.registry_client import CheckResult
from swarmai.spec import Stack

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "promotion"))
from fakes import FakeRegistry

STACK = Stack.model_validate({
    "version": 1, "name": "demo",
    "models": [{"name": "iris", "runtime": "fastapi", "model": "models:/iris@production"}],
})
URI = "models:/iris@production"
FILE = Path("stack.yaml")


def _interrupted(source: str | None, target: str, moved: bool) -> FakeRegistry:
    """The registry as a promotion of production from ``source`` to ``target`` left it."""
    registry = FakeRegistry(versions={"iris": {1, 2, 3}},
                            aliases={"iris": {"production": int(source or 1)}},
                            tags={"iris": {"swarmai.previous.production": "1"}})
    if source is None:
        registry.aliases["iris"].clear()
    registry.move_alias("iris", "production", target)
    if not moved:  # died after writing its records, before the alias moved
        if source is None:
            registry.aliases["iris"].clear()
        else:
            registry.aliases["iris"]["production"] = int(source)
    registry.calls.clear()
    return registry


def _check(registry: FakeRegistry) -> list[CheckResult]:
    tags = registry.tags["iris"]
    version = registry.aliases["iris"].get("production")
    return [CheckResult(URI, found=True, version=version,
                        pending=modeluri.decode_pending(tags.get("swarmai.pending.production")))]


def test_a_moved_alias_goes_back_and_the_records_go_last() -> None:
    registry = _interrupted("2", "3", moved=True)
    said: list[str] = []
    results = undo_interrupted(registry, STACK, FILE, _check(registry), said.append)
    assert results == [CheckResult(URI, found=True, version=2)]
    assert registry.aliases["iris"]["production"] == 2
    assert registry.tags["iris"] == {"swarmai.previous.production": "1"}
    assert [call[0] for call in registry.calls] == ["move_alias", "set_tag", "set_tag"]
    assert registry.calls[-1] == ("set_tag", "iris", "swarmai.pending.production", None)
    assert said == ["an interrupted promotion of iris@production (version 2 -> 3) was undone: "
                    "@production is back at version 2; promote it again with `swarmai "
                    "promote stack.yaml iris --to production --version 3`"]


def test_records_of_a_promotion_that_never_moved_the_alias_are_removed() -> None:
    registry = _interrupted("2", "3", moved=False)
    said: list[str] = []
    results = undo_interrupted(registry, STACK, FILE, _check(registry), said.append)
    assert results == [CheckResult(URI, found=True, version=2)]
    assert registry.tags["iris"] == {"swarmai.previous.production": "1"}
    assert not any(call[0] == "move_alias" for call in registry.calls)
    assert said[0].endswith("had not moved the alias: its records are removed")


def test_an_undo_cut_short_is_finished_by_the_next_run() -> None:
    registry = _interrupted("2", "3", moved=True)
    registry.move_alias("iris", "production", 2, remember=False)  # the undo died here
    undo_interrupted(registry, STACK, FILE, _check(registry), lambda _: None)
    assert registry.aliases["iris"]["production"] == 2
    assert registry.tags["iris"] == {"swarmai.previous.production": "1"}


def test_an_alias_the_promotion_created_is_left_for_promote_resume() -> None:
    registry = _interrupted(None, "3", moved=True)
    before = {name: dict(tags) for name, tags in registry.tags.items()}
    with pytest.raises(OperationError, match=r"swarmai promote stack.yaml iris --to "
                                             r"production --resume"):
        undo_interrupted(registry, STACK, FILE, _check(registry), lambda _: None)
    assert registry.tags == before and registry.aliases["iris"]["production"] == 3


def test_results_without_a_record_are_left_alone() -> None:
    registry = FakeRegistry(versions={"iris": {1}}, aliases={"iris": {"production": 1}})
    results = [CheckResult(URI, found=True, version=1)]
    assert undo_interrupted(registry, STACK, FILE, results, lambda _: None) == results
    assert registry.calls == []
