"""The TorchServe image: in the offline catalog, built from the host's CPU torch wheel.

PyPI's torch is a multi-GB CUDA build, so the wheel comes from a host folder
(``$SWARMAI_WHEELS``, default /opt/wheels) as the build context ``wheels``; a
host without it gets an error naming the file before anything is built.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

from swarmai import engine
from swarmai.errors import OperationError
from swarmai.images import build, catalog, image_tags


class FakeEngine:
    """Only what build_images asks of the engine before building: which tags exist."""

    def __init__(self, present: set[str]) -> None:
        self.present = present
        self.tagged: list[tuple[str, str]] = []


@pytest.fixture(autouse=True)
def fake_engine_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "image_exists",
                        lambda fake, tag: tag in fake.present)
    monkeypatch.setattr(engine, "tag_image",
                        lambda fake, source, alias: fake.tagged.append((source, alias)))


def test_offline_tags_include_torchserve_locked_at_0_12() -> None:
    tags = image_tags(offline=True)
    assert tags["torchserve"].startswith("swarmai/torchserve:0.12.0-")
    assert "torchserve" not in image_tags(offline=False)
    locked = catalog.locked_packages(catalog.BY_NAME["torchserve"])
    assert locked["torchserve"] == locked["torch-model-archiver"] == "0.12.0"
    assert catalog.TORCH_CPU_WHEEL.startswith(f"torch-{locked['torch']}-cp311-")
    assert catalog.BY_NAME["torchserve"].host_wheels == (catalog.TORCH_CPU_WHEEL,)


def test_the_lock_pins_the_wheel_by_its_hash() -> None:
    lock = (catalog.context_dir("torchserve") / "requirements.lock").read_text()
    entry = re.search(r"^torch==2\.13\.0\+cpu \\\n((?:    --hash=sha256:\w+.*\n)+)", lock,
                      re.MULTILINE)
    assert entry, "the torchserve lock pins torch==2.13.0+cpu with its hash"
    wheel = Path(build.DEFAULT_WHEELS) / catalog.TORCH_CPU_WHEEL
    if wheel.is_file():  # the host's wheel is the one the lock was made from
        assert hashlib.sha256(wheel.read_bytes()).hexdigest() in entry[1]


def test_the_dockerfile_installs_the_wheel_from_the_wheels_context_never_from_pypi() -> None:
    dockerfile = catalog.context_files(catalog.BY_NAME["torchserve"])["Dockerfile"].decode()
    code = "\n".join(line for line in dockerfile.splitlines()
                     if not line.lstrip().startswith("#"))
    assert "--mount=type=bind,from=wheels,target=/tmp/wheels" in code
    assert "--require-hashes --no-deps" in code
    assert "--find-links /tmp/wheels -r /tmp/requirements.lock" in code
    # A local version PyPI cannot have: its CUDA torch never satisfies the lock.
    assert "\ntorch==2.13.0+cpu \\" in catalog.context_files(
        catalog.BY_NAME["torchserve"])["requirements.lock"].decode()
    assert "openjdk-17-jre-headless" in code


def test_a_missing_wheel_fails_before_anything_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(build.WHEELS_ENV, str(tmp_path))
    built: list[Any] = []
    monkeypatch.setattr(build, "_build", lambda *args: built.append(args))
    with pytest.raises(OperationError) as caught:
        build.build_images(FakeEngine(set()), offline=True)  # type: ignore[arg-type]
    message = str(caught.value)
    assert catalog.TORCH_CPU_WHEEL in message and str(tmp_path) in message
    assert build.WHEELS_ENV in message and "CUDA" in message
    assert built == []


def test_a_present_torchserve_image_needs_no_wheel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(build.WHEELS_ENV, str(tmp_path))
    tags = catalog.compute_tags()
    results = build.build_images(FakeEngine(set(tags.values())), offline=True)  # type: ignore[arg-type]
    assert all(not r.built for r in results)


def test_the_wheel_folder_is_handed_to_the_build_as_the_wheels_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(build.WHEELS_ENV, str(tmp_path))
    (tmp_path / catalog.TORCH_CPU_WHEEL).write_bytes(b"wheel")
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(build, "build_context", lambda engine, context, **kw: calls.append(kw))
    image = catalog.BY_NAME["torchserve"]
    build._buildx(None, image, tmp_path, catalog.compute_tags(), lambda _: None)  # type: ignore[arg-type]
    assert calls[0]["build_contexts"] == {"wheels": tmp_path}
    assert calls[0]["labels"]["org.opencontainers.image.version"] == "0.12.0"
