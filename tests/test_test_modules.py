"""No two test modules share a file name.

The test directories are not packages, so pytest imports each test module by
its bare name: a second ``test_x.py`` anywhere under tests/ stops the whole
run at collection ("import file mismatch"), which no subset run shows.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_every_test_module_has_its_own_name() -> None:
    by_name: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("test_*.py"):
        by_name[path.name].append(str(path.relative_to(TESTS)))
    shared = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    assert not shared, f"rename one of each: {shared}"
    assert len(by_name) > 50  # the walk found the tree
