"""Image names in the stack's registry: pure logic, no engine."""

from __future__ import annotations

import pytest

from swarmai.images.publish import in_registry, names_a_registry


@pytest.mark.parametrize(("reference", "expected"), [
    ("swarmai/server:0.1.0", False),
    ("traefik:v3.7.15", False),
    ("registry.local/traefik:v3", True),
    ("10.0.0.5:5000/swarmai/server:1", True),
    ("localhost/x:1", True),
])
def test_names_a_registry(reference: str, expected: bool) -> None:
    assert names_a_registry(reference) is expected


def test_in_registry_prefixes_once_and_drops_a_digest() -> None:
    assert in_registry("r:5000", "swarmai/server:1") == "r:5000/swarmai/server:1"
    assert in_registry("r:5000", "r:5000/swarmai/server:1@sha256:ab") == "r:5000/swarmai/server:1"
