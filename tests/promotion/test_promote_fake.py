"""Promotion's restore and rollback branches, against the fakes of the registry and engine.

The real thing is tests/e2e/test_promotion*.py (minutes per case, on a real
engine); these run in milliseconds and reach the branches a real engine makes
hard to provoke: a roll that fails, a version check that fails, a restore that
fails too, and rollback with and without a record of the previous version.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeBackend, FakeRegistry

from swarmai.errors import Interrupted, OperationError, UsageError
from swarmai.lifecycle.steps import StartOptions
from swarmai.modeluri import Pending, canary_tag, encode_canary, pending_tag, previous_tag
from swarmai.promotion import promote as promotion
from swarmai.spec import Model, Stack, Target

STACK = Stack.model_validate({
    "version": 1, "name": "demo",
    "models": [
        {"name": "iris", "runtime": "fastapi", "model": "models:/iris@production"},
        {"name": "bert", "runtime": "tfserving", "model": "models:/bert@production"},
    ],
})
PREVIOUS = previous_tag("production")
PENDING = pending_tag("production")


@pytest.fixture
def registry() -> FakeRegistry:
    """iris and bert: versions 1-3, production at 2, and 1 remembered as its previous."""
    return FakeRegistry(
        versions={"iris": {1, 2, 3}, "bert": {1, 2, 3}},
        aliases={"iris": {"production": 2, "staging": 3}, "bert": {"production": 2}},
        tags={"iris": {PREVIOUS: "1"}, "bert": {PREVIOUS: "1"}},
    )


Setup = Callable[..., tuple[promotion.Context, FakeBackend]]


@pytest.fixture
def setup(registry: FakeRegistry, monkeypatch: pytest.MonkeyPatch) -> Setup:
    """A promotion context for one model over a fake backend, already serving what the
    aliases point at; the gateway check asks the fake what it serves."""
    backend: FakeBackend | None = None

    def wait_for_version(stack: Stack, model: Model, version: str, host: str, *,
                         progress: Callable[[str], None], **_: Any) -> None:
        assert backend is not None
        answered = backend.answers(model.name)
        if answered != int(version):
            raise OperationError(f"{model.public_route} did not answer with version {version} "
                                 f"(last answer: version {answered})")

    monkeypatch.setattr(promotion, "wait_for_version", wait_for_version)
    monkeypatch.setattr(promotion, "_FILE_RELOAD_S", 0.0)

    def make(model: str = "iris", target: Target = "swarm",
             **failures: Any) -> tuple[promotion.Context, FakeBackend]:
        nonlocal backend
        backend = FakeBackend(registry, target=target, **failures)
        backend.serving = {"iris": 2, "bert": 2}
        ctx = promotion.context(backend, registry, STACK, Path("stack.yaml"), StartOptions(),
                                lambda line: None, model)
        return ctx, backend

    return make


def _calls(backend: FakeBackend, kind: str) -> list[tuple[Any, ...]]:
    return [call for call in backend.calls if call[0] == kind]


def test_a_promotion_moves_the_alias_and_remembers_the_old_version(
        setup: Setup, registry: FakeRegistry) -> None:
    ctx, backend = setup()
    report = promotion.promote(ctx, promotion.Promotion("iris", "production", version="3"))
    assert (report.action, report.version, report.previous, report.changed) == (
        "promoted", "3", "2", True)
    assert registry.aliases["iris"]["production"] == 3
    assert registry.tags["iris"][PREVIOUS] == "2"
    assert backend.serving["iris"] == 3
    assert _calls(backend, "preflight") == [("preflight", "iris", 3)]


def test_when_the_roll_fails_the_alias_is_restored_and_swarm_rolls_back(
        setup: Setup, registry: FakeRegistry) -> None:
    ctx, backend = setup(broken={3})
    with pytest.raises(OperationError, match="@production is back at version 2"):
        promotion.promote(ctx, promotion.Promotion("iris", "production", version="3"))
    assert registry.aliases["iris"]["production"] == 2
    # The remembered previous version is the one from before the promotion, not 2.
    assert registry.tags["iris"][PREVIOUS] == "1"
    assert ("move_alias", "iris", "production", 2, False) in backend.calls
    assert _calls(backend, "roll_back") == [("roll_back", "model-iris")]
    # Swarm keeps the previous spec: no second start after the rollback; the
    # promotion's pending record goes last.
    assert backend.calls[-2:] == [("roll_back", "model-iris"),
                                  ("set_tag", "iris", PENDING, None)]
    assert backend.serving["iris"] == 2


def test_when_the_version_check_fails_the_servers_are_rolled_back_too(
        setup: Setup, registry: FakeRegistry) -> None:
    ctx, backend = setup(unanswered={3})
    with pytest.raises(OperationError, match="did not answer with version 3"):
        promotion.promote(ctx, promotion.Promotion("iris", "production", from_alias="staging"))
    assert registry.aliases["iris"]["production"] == 2
    assert _calls(backend, "roll_back") == [("roll_back", "model-iris")]


def test_on_compose_a_failed_roll_starts_the_previous_version_again(
        setup: Setup, registry: FakeRegistry) -> None:
    ctx, backend = setup(target="compose", unanswered={3})
    with pytest.raises(OperationError, match="back at version 2"):
        promotion.promote(ctx, promotion.Promotion("iris", "production", version="3"))
    assert registry.aliases["iris"]["production"] == 2
    starts = [call for call in backend.calls if call[0] in ("start", "roll_back")]
    assert starts == [("start", "compose"), ("roll_back", "model-iris"), ("start", "compose")]
    assert backend.serving["iris"] == 2


def test_an_external_runtime_is_synced_again_after_its_alias_is_restored(
        setup: Setup, registry: FakeRegistry) -> None:
    ctx, backend = setup(model="bert", unanswered={3})
    with pytest.raises(OperationError, match="back at version 2"):
        promotion.promote(ctx, promotion.Promotion("bert", "production", version="3"))
    assert registry.aliases["bert"]["production"] == 2
    assert _calls(backend, "roll_back") == []  # only pinned FastAPI servers roll back
    assert _calls(backend, "restart") == [("restart", "sync-bert"), ("restart", "sync-bert")]


def test_when_restoring_fails_too_both_failures_are_reported(
        setup: Setup, registry: FakeRegistry) -> None:
    ctx, _backend = setup(broken={3}, fail_roll_back=True)
    with pytest.raises(OperationError) as raised:
        promotion.promote(ctx, promotion.Promotion("iris", "production", version="3"))
    message = str(raised.value)
    assert "failed, and so did putting version 2 back" in message
    assert "was not rolled back" in message and "failed its healthcheck" in message
    assert registry.aliases["iris"]["production"] == 2  # the alias moved back first


def test_an_alias_that_did_not_move_is_left_alone_when_the_roll_fails(
        setup: Setup, registry: FakeRegistry) -> None:
    ctx, backend = setup(broken={2})
    with pytest.raises(OperationError, match="failed its healthcheck"):
        promotion.promote(ctx, promotion.Promotion("iris", "production", version="2"))
    assert registry.aliases["iris"]["production"] == 2
    assert [call for call in _calls(backend, "move_alias") if call[-1] is False] == []
    assert _calls(backend, "roll_back") == []


def test_rollback_moves_the_alias_back_to_the_recorded_previous_version(
        setup: Setup, registry: FakeRegistry) -> None:
    ctx, backend = setup()
    report = promotion.rollback(ctx, "production")
    assert (report.action, report.version, report.previous, report.changed) == (
        "rolled-back", "1", "2", True)
    assert registry.aliases["iris"]["production"] == 1
    assert backend.serving["iris"] == 1
    assert _calls(backend, "preflight") == []  # it served before: no pre-flight
    # Rolling back twice returns to where it started.
    again = promotion.rollback(ctx, "production")
    assert (again.version, again.previous) == ("2", "1")
    assert registry.aliases["iris"]["production"] == 2


def test_a_rollback_whose_roll_fails_puts_the_alias_back_where_it_was(
        setup: Setup, registry: FakeRegistry) -> None:
    ctx, backend = setup(broken={1})
    with pytest.raises(OperationError, match="@production is back at version 2"):
        promotion.rollback(ctx, "production")
    assert registry.aliases["iris"]["production"] == 2
    assert registry.tags["iris"][PREVIOUS] == "1"
    assert backend.serving["iris"] == 2


def test_rollback_without_a_recorded_previous_version_is_refused(
        setup: Setup, registry: FakeRegistry) -> None:
    del registry.tags["iris"][PREVIOUS]
    ctx, backend = setup()
    with pytest.raises(UsageError, match="no earlier version on record"):
        promotion.rollback(ctx, "production")
    assert _calls(backend, "move_alias") == [] and _calls(backend, "start") == []


def test_rollback_of_a_running_canary_removes_the_canary_and_keeps_the_alias(
        setup: Setup, registry: FakeRegistry) -> None:
    registry.tags["iris"][canary_tag("production")] = encode_canary(3, 10)
    ctx, backend = setup()
    report = promotion.rollback(ctx, "production")
    assert (report.action, report.version, report.previous) == ("canary-removed", "2", "3")
    assert canary_tag("production") not in registry.tags["iris"]
    assert backend.files == {"canary-iris.yml": None}
    assert registry.aliases["iris"]["production"] == 2
    assert _calls(backend, "start") == [("start", "swarm")]


# --- crash safety: the pending record ------------------------------------------------


def test_the_pending_record_is_written_before_the_move_and_cleared_after_the_check(
        setup: Setup, registry: FakeRegistry) -> None:
    ctx, backend = setup()
    seen = []
    original = backend.start

    def start(*args: Any) -> Any:
        seen.append(dict(registry.tags["iris"]))  # what a kill during the roll leaves
        return original(*args)

    backend.start = start  # type: ignore[method-assign]
    promotion.promote(ctx, promotion.Promotion("iris", "production", version="3"))
    assert Pending("2", "3", "1").encode() == seen[0][PENDING]
    assert seen[0][PREVIOUS] == "2"
    assert PENDING not in registry.tags["iris"]


def _interrupted(registry: FakeRegistry, *, moved: bool) -> None:
    """What a promotion of iris 2 -> 3 killed after (or before) the alias move leaves."""
    registry.tags["iris"].update({PENDING: Pending("2", "3", "1").encode(), PREVIOUS: "2"})
    if moved:
        registry.aliases["iris"]["production"] = 3


def test_the_next_promotion_finishes_an_interrupted_one_first(
        setup: Setup, registry: FakeRegistry) -> None:
    _interrupted(registry, moved=True)
    ctx, backend = setup()  # still serving 2: the kill came before the roll
    report = promotion.promote(ctx, promotion.Promotion("iris", "production", version="3"))
    assert (report.resumed, report.action) == ("finished", "unchanged")
    assert backend.serving["iris"] == 3 and registry.tags["iris"][PREVIOUS] == "2"
    assert PENDING not in registry.tags["iris"]


def test_an_interrupted_promotion_that_cannot_finish_is_undone(
        setup: Setup, registry: FakeRegistry) -> None:
    _interrupted(registry, moved=True)
    ctx, backend = setup(broken={3})
    report = promotion.promote(ctx, promotion.Promotion("iris", "production", version="2"))
    assert (report.resumed, report.action, report.version) == ("undone", "unchanged", "2")
    assert registry.aliases["iris"]["production"] == 2
    assert registry.tags["iris"][PREVIOUS] == "1" and PENDING not in registry.tags["iris"]
    assert backend.serving["iris"] == 2


def test_records_of_a_promotion_killed_before_its_move_are_undone(
        setup: Setup, registry: FakeRegistry) -> None:
    _interrupted(registry, moved=False)
    ctx, _ = setup()
    report = promotion.promote(ctx, promotion.Promotion("iris", "production", version="3"))
    assert (report.resumed, report.action, report.previous) == ("undone", "promoted", "2")
    # The previous record is 2 again only because this promotion moved 2 -> 3.
    assert registry.tags["iris"][PREVIOUS] == "2" and PENDING not in registry.tags["iris"]


def test_rollback_during_an_interrupted_promotion_undoes_it(
        setup: Setup, registry: FakeRegistry) -> None:
    _interrupted(registry, moved=True)
    ctx, backend = setup()
    backend.serving["iris"] = 3
    report = promotion.rollback(ctx, "production")
    assert (report.action, report.version, report.resumed) == ("rolled-back", "2", "undone")
    assert registry.aliases["iris"]["production"] == 2 and backend.serving["iris"] == 2
    assert registry.tags["iris"][PREVIOUS] == "1" and PENDING not in registry.tags["iris"]


def test_an_interrupt_during_the_roll_puts_the_old_version_back(
        setup: Setup, registry: FakeRegistry) -> None:
    ctx, backend = setup()
    original = backend.start
    calls = 0

    def start(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise KeyboardInterrupt  # SIGINT, or SIGTERM as the CLI turns it
        return original(*args)

    backend.start = start  # type: ignore[method-assign]
    with pytest.raises(Interrupted, match="was interrupted, so @production is back at "
                                          "version 2") as raised:
        promotion.promote(ctx, promotion.Promotion("iris", "production", version="3"))
    assert raised.value.exit_code == 130
    assert registry.aliases["iris"]["production"] == 2
    assert registry.tags["iris"][PREVIOUS] == "1" and PENDING not in registry.tags["iris"]
