"""Shared test setup: Hypothesis profiles and a helper to write stack files."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
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
