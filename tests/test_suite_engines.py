"""The suite's scheduler (tests/conftest.py): each engine's e2e tests on one worker."""

from __future__ import annotations

from pathlib import Path

from engine_groups import OWN_ENGINES, engine_group

REPO = Path(__file__).resolve().parents[1]


def test_each_engine_s_e2e_tests_share_a_group_and_unit_tests_have_none() -> None:
    assert engine_group("tests/e2e/test_promotion.py::test_x") == "host-engine"
    assert engine_group("tests/e2e/test_plan.py::test_y[a::b]") == "host-engine"
    assert engine_group("tests/e2e/test_cluster.py::test_z") == "cluster"
    assert engine_group("tests/spec/test_load.py::test_e2e_like_name") is None


def test_every_module_with_engines_of_its_own_exists() -> None:
    assert all((REPO / path).is_file() for path in OWN_ENGINES)
