from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from swarmai.render import render_bundle
from swarmai.spec import Stack, load_stack

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def vision() -> Stack:
    return load_stack(REPO / "stacks" / "vision.yaml", "swarm")


@pytest.fixture
def main_document() -> Callable[..., dict[str, Any]]:
    """Render a stack and parse its Compose/stack file back into data."""

    def render(stack: Stack, target: str, *, ipvs: bool = False) -> dict[str, Any]:
        bundle = render_bundle(stack, target, ipvs=ipvs)  # type: ignore[arg-type]
        document: dict[str, Any] = yaml.safe_load(bundle.files[bundle.main])
        return document

    return render
