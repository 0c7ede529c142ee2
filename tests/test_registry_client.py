"""The registry client turns each JSON answer into typed results, and back unchanged.

The one-off container is replaced by canned answers in the exact form
``python -m swarmai.incontainer.registry_ops`` prints (see
tests/incontainer/registry_ops for that side).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from swarmai import registry_client
from swarmai.errors import OperationError, UsageError
from swarmai.registry_client import (
    AliasMove,
    CheckResult,
    ModelVersion,
    RegistryClient,
    RegistryTarget,
)

DESCRIBED = {
    "name": "iris",
    "aliases": {"production": "3", "staging": "4"},
    "tags": {"swarmai.previous.production": "2",
             "swarmai.canary.production": '{"percent": 10, "version": "4"}'},
    "versions": {
        "3": {"version": "3", "run_id": "abc", "metrics": {"accuracy": 0.9}},
        "4": {"version": "4", "run_id": None, "metrics": {}},
    },
}
LISTED = [
    {"name": "iris", "version": "4", "aliases": ["staging"], "status": "READY"},
    {"name": "iris", "version": "3", "aliases": [], "status": "READY"},
]


def client(monkeypatch: pytest.MonkeyPatch, answer: Any) -> tuple[RegistryClient, list[Any]]:
    commands: list[Any] = []

    def run(engine: Any, target: RegistryTarget, command: list[str], **kwargs: Any) -> Any:
        commands.append(command)
        return json.loads(json.dumps(answer))

    monkeypatch.setattr(registry_client, "_run", run)
    return RegistryClient(engine=None, target=RegistryTarget("s", "s_models", "img")), commands


def test_a_description_is_typed_and_prints_back_as_it_came(
        monkeypatch: pytest.MonkeyPatch) -> None:
    registry, commands = client(monkeypatch, DESCRIBED)
    described = registry.describe("iris", ["3"])
    assert commands == [["describe", "iris", "--version", "3"]]
    assert described.aliases == {"production": 3, "staging": 4}
    assert described.versions[3].metrics == {"accuracy": 0.9}
    assert described.previous("production") == 2 and described.previous("staging") is None
    assert described.canary("production") == 4 and described.canary("staging") is None
    assert described.as_dict() == DESCRIBED


def test_versions_are_typed_and_list_back_as_they_came(monkeypatch: pytest.MonkeyPatch) -> None:
    registry, _commands = client(monkeypatch, LISTED)
    versions = registry.versions()
    assert versions[0] == ModelVersion("iris", 4, ("staging",))
    assert [v.as_dict() for v in versions] == LISTED


def test_check_results_carry_versions_and_canaries(monkeypatch: pytest.MonkeyPatch) -> None:
    registry, _commands = client(monkeypatch, [
        {"uri": "models:/iris@production", "found": True, "version": "3", "error": None,
         "canary": "4"},
        {"uri": "models:/churn/2", "found": False, "version": None,
         "error": "RESOURCE_DOES_NOT_EXIST", "canary": None},
    ])
    assert registry.check(["models:/iris@production", "models:/churn/2"]) == [
        CheckResult("models:/iris@production", True, 3, None, 4),
        CheckResult("models:/churn/2", False, None, "RESOURCE_DOES_NOT_EXIST", None),
    ]


def test_an_alias_move_says_where_it_pointed(monkeypatch: pytest.MonkeyPatch) -> None:
    registry, commands = client(monkeypatch, {"name": "iris", "alias": "production",
                                              "version": "4", "previous": None,
                                              "changed": True})
    assert registry.move_alias("iris", "production", 4, remember=False) == AliasMove(
        "iris", "production", 4, None, True)
    assert commands == [["move-alias", "iris", "production", "4", "--forget"]]


def test_an_unexpected_answer_is_an_operation_error(monkeypatch: pytest.MonkeyPatch) -> None:
    registry, _commands = client(monkeypatch, {"name": "iris"})
    with pytest.raises(OperationError, match="answered in an unexpected form"):
        registry.describe("iris")


def test_pushing_a_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    registry = RegistryClient(engine=None, target=RegistryTarget("s", "s_models", "img"))
    with pytest.raises(UsageError, match="no such file or directory"):
        registry.push("iris", tmp_path / "missing.pkl", None)
