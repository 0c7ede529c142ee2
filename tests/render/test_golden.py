"""Golden-file tests: every example stack renders, for both targets, exactly as reviewed.

Besides stacks/, tests/render/stacks/ holds stacks that exercise keys the
examples leave out (per-model server settings).

Regenerate after an intended change with ``UPDATE_GOLDEN=1 pytest tests/render``
and review the diff like code.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from swarmai.render import render_bundle
from swarmai.spec import load_stack

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "golden"
STACKS = sorted((REPO / "stacks").glob("*.yaml")) + sorted(
    (Path(__file__).resolve().parent / "stacks").glob("*.yaml"))
CASES = [(stack, target) for stack in STACKS for target in ("compose", "swarm")]


@pytest.mark.parametrize(("stack_path", "target"), CASES, ids=lambda v: getattr(v, "stem", v))
def test_rendering_matches_golden_files(stack_path: Path, target: str) -> None:
    bundle = render_bundle(load_stack(stack_path, target), target, ipvs=False)  # type: ignore[arg-type]
    expected_dir = GOLDEN / f"{stack_path.stem}-{target}"
    if os.environ.get("UPDATE_GOLDEN"):
        for relative, text in bundle.files.items():
            (expected_dir / relative).parent.mkdir(parents=True, exist_ok=True)
            (expected_dir / relative).write_text(text, encoding="utf-8")
    expected = {
        str(p.relative_to(expected_dir)): p.read_text(encoding="utf-8")
        for p in expected_dir.rglob("*") if p.is_file()
    }
    assert sorted(bundle.files) == sorted(expected), "the set of rendered files changed"
    for relative, text in bundle.files.items():
        assert text == expected[relative], f"{relative} differs from its golden file"
