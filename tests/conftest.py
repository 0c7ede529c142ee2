"""Shared test setup: Hypothesis profiles, a helper to write stack files, and the
suite's own guards (every real-engine test carries the ``e2e`` marker; with
``SWARMAI_NO_SKIPS=1``, as scripts/test.sh sets it, a skipped test fails the run)."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from engine_groups import engine_group
from hypothesis import HealthCheck, settings

# "ci" runs the fuzz tests hard; "dev" keeps a local run quick.  CI=anything picks "ci".
settings.register_profile(
    "ci", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "dev", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def write_stack(tmp_path: Path) -> Callable[..., Path]:
    """Write dedented YAML text to a fresh file under tmp_path and return its path."""
    counter = iter(range(1_000_000))

    def write(text: str, name: str = "") -> Path:
        path = tmp_path / (name or f"stack{next(counter)}.yaml")
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


E2E = REPO / "tests" / "e2e"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse an e2e test without the marker: `-m "not e2e"` must leave out every one."""
    unmarked = sorted({str(item.path.relative_to(REPO)) for item in items
                       if item.path.is_relative_to(E2E) and item.get_closest_marker("e2e") is None})
    if unmarked:
        raise pytest.UsageError(
            f"real-engine tests without the e2e marker: {', '.join(unmarked)}; "
            "add `pytestmark = pytest.mark.e2e` to each file")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With SWARMAI_NO_SKIPS=1, a run that skipped anything fails: CI must run every test."""
    if os.environ.get("SWARMAI_NO_SKIPS") != "1" or exitstatus != pytest.ExitCode.OK:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped:
        for report in skipped:
            reporter.write_line(f"SKIPPED (not allowed with SWARMAI_NO_SKIPS=1): {report.nodeid}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under `pytest -n N` (scripts/test.sh: 2), each engine's e2e tests run on one
    worker, one after another in file order: they share its stacks' ports and several
    check that a stack leaves the engine as found.  The host engine's and the
    cluster's run side by side; the unit tests fill in around them.

    A scheduler of our own because xdist's `--dist loadgroup` does not group under
    pytest 9 (it renames `item._nodeid`, which pytest 9 no longer reads)."""
    from xdist.scheduler import LoadScopeScheduling

    class ByEngine(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return engine_group(nodeid) or nodeid

    return ByEngine(config, log)
