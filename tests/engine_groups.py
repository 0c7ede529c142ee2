"""Which engine each test uses: the suite's xdist scheduler (tests/conftest.py) runs
the tests of one engine on one worker, one after another."""

from __future__ import annotations

# e2e modules that use engines of their own, not the host's (scripts/cluster.sh).
OWN_ENGINES = {"tests/e2e/test_cluster.py": "cluster"}


def engine_group(nodeid: str) -> str | None:
    """The engine a test uses, for the tests that use one; None for the rest."""
    path = nodeid.split("::", 1)[0]
    if path in OWN_ENGINES:
        return OWN_ENGINES[path]
    return "host-engine" if path.startswith("tests/e2e/") else None
