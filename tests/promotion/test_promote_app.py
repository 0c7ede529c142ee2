"""Promotion of a `runtime: app` model, against the fakes of the registry and engine.

An app that loads an aliased registry model is promoted like a FastAPI server
(pinned, so the alias move rolls it, and Swarm rolls it back when that fails);
one that loads none has no alias, and is promoted by its image instead.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from fakes import FakeBackend, FakeRegistry

from swarmai.errors import OperationError, SpecError, UsageError
from swarmai.lifecycle.steps import StartOptions
from swarmai.promotion import promote as promotion
from swarmai.promotion.policy import load_policy
from swarmai.spec import Stack

STACK = Stack.model_validate({
    "version": 1, "name": "demo",
    "models": [
        {"name": "ranker", "runtime": "app", "model": "models:/ranker@production",
         "app": {"image": "me/ranker:1"}},
        {"name": "echo", "runtime": "app", "app": {"image": "me/echo:1"}},
    ],
})


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry(versions={"ranker": {1, 2, 3}},
                        aliases={"ranker": {"production": 2}})


@pytest.fixture(autouse=True)
def gateway_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    # The app sends no X-Model-Version: the health-gated roll is the check.
    monkeypatch.setattr(promotion, "wait_for_version", lambda *args, **kwargs: None)


def _context(registry: FakeRegistry, model: str, **failures: object) -> tuple[
        promotion.Context, FakeBackend]:
    backend = FakeBackend(registry, **failures)  # type: ignore[arg-type]
    backend.serving = {"ranker": 2}
    return promotion.context(backend, registry, STACK, Path("stack.yaml"), StartOptions(),
                             lambda line: None, model), backend


def test_an_apps_alias_is_promoted_by_rolling_the_app(registry: FakeRegistry) -> None:
    ctx, backend = _context(registry, "ranker")
    report = promotion.promote(ctx, promotion.Promotion("ranker", "production", version="3"))
    assert (report.action, report.version, report.previous) == ("promoted", "3", "2")
    assert backend.serving["ranker"] == 3
    assert ("preflight", "ranker", 3) in backend.calls
    # Pinned like a FastAPI server: no sync step to restart.
    assert [call for call in backend.calls if call[0] == "restart"] == []


def test_a_failed_roll_of_an_app_is_rolled_back_by_swarm(registry: FakeRegistry) -> None:
    ctx, backend = _context(registry, "ranker", broken={3})
    with pytest.raises(OperationError, match="@production is back at version 2"):
        promotion.promote(ctx, promotion.Promotion("ranker", "production", version="3"))
    assert ("roll_back", "model-ranker") in backend.calls
    assert registry.aliases["ranker"]["production"] == 2


def test_an_app_without_a_registry_model_is_promoted_by_its_image(
        registry: FakeRegistry) -> None:
    with pytest.raises(UsageError, match=r"changing app.image in stack.yaml and running "
                                         r"`swarmai deploy stack.yaml`"):
        _context(registry, "echo")


def test_an_app_gets_no_canary(registry: FakeRegistry) -> None:
    ctx, _backend = _context(registry, "ranker")
    with pytest.raises(UsageError, match="canaries are for fastapi models"):
        promotion.promote(ctx, promotion.Promotion("ranker", "production", version="3",
                                                   canary_percent=10))
    assert registry.aliases["ranker"]["production"] == 2


def test_a_policy_rule_for_an_app_without_a_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text(textwrap.dedent("""\
        version: 1
        name: apps
        models:
          - {name: echo, runtime: app, app: {image: "me/echo:1"}}
          - {name: ranker, runtime: app, model: "models:/ranker@production",
             app: {image: "me/ranker:1"}}
        """))
    rule = "  - {model: %s, from: staging, to: production, metric: auc, compare: higher}\n"
    head = "version: 1\nstack: stack.yaml\ntarget: compose\nmodels:\n"
    (tmp_path / "policy.yaml").write_text(head + rule % "ranker" + rule % "echo")
    with pytest.raises(SpecError) as caught:
        load_policy(tmp_path / "policy.yaml")
    (problem,) = caught.value.problems
    assert problem.path == "models[1].model"
    assert "loads no registry model" in problem.message and "app.image" in problem.hint
    (tmp_path / "policy.yaml").write_text(head + rule % "ranker")
    assert load_policy(tmp_path / "policy.yaml").registered == {"ranker": "ranker"}
