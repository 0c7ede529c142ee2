"""The TorchServe image: in the offline catalog, built from the host's CPU torch wheel.

PyPI's torch is a multi-GB CUDA build, so the wheel comes from a host folder
(``$SWARMAI_WHEELS``, default /opt/wheels) as the build context ``wheels``; a
host without it gets an error naming the file before anything is built.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from swarmai.errors import OperationError
from swarmai.images import build, catalog, image_tags


class FakeDocker:
    """Only what build_images asks before building: which tags exist."""

    def __init__(self, present: set[str]) -> None:
        self.image = SimpleNamespace(exists=lambda tag: tag in present, tag=self._tag)
        self.tagged: list[tuple[str, str]] = []

    def _tag(self, source: str, alias: str) -> None:
        self.tagged.append((source, alias))


def test_offline_tags_include_torchserve_pinned_to_0_12() -> None:
    tags = image_tags(offline=True)
    assert tags["torchserve"].startswith("swarmai/torchserve:0.12.0-")
    assert "torchserve" not in image_tags(offline=False)
    pins = catalog.BY_NAME["torchserve"].pins
    assert pins["TORCHSERVE_VERSION"] == pins["TORCH_MODEL_ARCHIVER_VERSION"] == "0.12.0"
    assert pins["TORCH_WHEEL"].startswith("torch-2.13.0+cpu-cp311-")
    assert catalog.BY_NAME["torchserve"].host_wheels == (pins["TORCH_WHEEL"],)


def test_the_wheel_name_is_part_of_the_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    before = catalog.compute_tags()["torchserve"]
    image = catalog.BY_NAME["torchserve"]
    other = catalog.ImageDef(**{**image.__dict__,
                                "pins": {**image.pins, "TORCH_WHEEL": "torch-2.14.0+cpu.whl"}})
    monkeypatch.setattr(catalog, "CATALOG", tuple(
        other if i.name == "torchserve" else i for i in catalog.CATALOG))
    monkeypatch.setattr(catalog, "BY_NAME", {i.name: i for i in catalog.CATALOG})
    assert catalog.compute_tags()["torchserve"] != before


def test_the_dockerfile_installs_the_wheel_from_the_wheels_context_never_from_pypi() -> None:
    dockerfile = catalog.context_files(catalog.BY_NAME["torchserve"])["Dockerfile"].decode()
    code = "\n".join(line for line in dockerfile.splitlines()
                     if not line.lstrip().startswith("#"))
    assert "--mount=type=bind,from=wheels" in code
    assert '"/tmp/wheels/${TORCH_WHEEL}"' in code
    assert re.search(r'["\s]torch(==|>|\s|"|$)', code, re.MULTILINE) is None
    assert "openjdk-17-jre-headless" in code


def test_a_missing_wheel_fails_before_anything_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(build.WHEELS_ENV, str(tmp_path))
    built: list[Any] = []
    monkeypatch.setattr(build, "_build", lambda *args: built.append(args))
    with pytest.raises(OperationError) as caught:
        build.build_images(FakeDocker(set()), offline=True)  # type: ignore[arg-type]
    message = str(caught.value)
    assert catalog.TORCH_CPU_WHEEL in message and str(tmp_path) in message
    assert build.WHEELS_ENV in message and "CUDA" in message
    assert built == []


def test_a_present_torchserve_image_needs_no_wheel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(build.WHEELS_ENV, str(tmp_path))
    tags = catalog.compute_tags()
    results = build.build_images(FakeDocker(set(tags.values())), offline=True)  # type: ignore[arg-type]
    assert all(not r.built for r in results)


def test_the_wheel_folder_is_handed_to_the_build_as_the_wheels_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(build.WHEELS_ENV, str(tmp_path))
    (tmp_path / catalog.TORCH_CPU_WHEEL).write_bytes(b"wheel")
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(build, "build_context", lambda docker, context, **kw: calls.append(kw))
    image = catalog.BY_NAME["torchserve"]
    build._buildx(None, image, tmp_path, catalog.compute_tags(), lambda _: None)  # type: ignore[arg-type]
    assert calls[0]["build_contexts"] == {"wheels": tmp_path}
    assert calls[0]["build_args"]["TORCH_WHEEL"] == catalog.TORCH_CPU_WHEEL
