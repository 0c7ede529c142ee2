"""Content-addressed image tags: stable while nothing changes, moved by any input that does."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from swarmai.images import catalog, image_tags
from swarmai.spec.images import DEFAULT_IMAGES

UPSTREAM = {"traefik", "seaweedfs", "mlflow", "postgres", "torchserve"}
OWN = {"fastapi", "model-sync", "engine-proxy"}
TAG = re.compile(r"^swarmai/(?P<name>[a-z-]+):(?P<version>[0-9a-z.]+)-(?P<hash>[0-9a-f]{12})$")


def all_tags() -> dict[str, str]:
    return catalog.compute_tags()


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {name for name in before if before[name] != after[name]}


def test_offline_tags_cover_the_upstream_and_own_images() -> None:
    tags = image_tags(offline=True)
    assert set(tags) == UPSTREAM | OWN
    assert set(tags) <= set(DEFAULT_IMAGES)


def test_online_tags_are_only_swarmais_own_images() -> None:
    assert set(image_tags(offline=False)) == OWN


def test_tags_name_the_local_repository_version_and_a_12_hex_hash() -> None:
    tags = image_tags(offline=True)
    for key, tag in tags.items():
        match = TAG.match(tag)
        assert match, tag
        assert match["name"] == ("server" if key == "fastapi" else key)
    assert tags["traefik"].startswith("swarmai/traefik:3.7.15-")
    assert tags["seaweedfs"].startswith("swarmai/seaweedfs:4.48-")


def test_tags_are_stable_when_nothing_changes() -> None:
    assert image_tags(offline=True) == image_tags(offline=True)
    assert image_tags(offline=False) == {
        k: v for k, v in image_tags(offline=True).items() if k in OWN
    }


def test_a_dockerfile_change_moves_only_that_images_tag(contexts: Path) -> None:
    before = all_tags()
    with (contexts / "postgres" / "Dockerfile").open("a") as dockerfile:
        dockerfile.write("# a comment is a change too\n")
    assert changed(before, all_tags()) == {"postgres"}


def test_a_context_file_change_moves_the_tag(contexts: Path) -> None:
    before = all_tags()
    script = contexts / "postgres" / "docker-entrypoint.sh"
    script.write_text(script.read_text() + "\n")
    assert changed(before, all_tags()) == {"postgres"}


def test_a_new_context_file_moves_the_tag(contexts: Path) -> None:
    before = all_tags()
    (contexts / "mlflow" / "extra.txt").write_text("x")
    assert changed(before, all_tags()) == {"mlflow"}


def test_a_shared_file_moves_every_image_that_uses_it(contexts: Path) -> None:
    before = all_tags()
    shared = contexts / "shared" / "entrypoint.sh"
    shared.write_text(shared.read_text() + "# changed\n")
    assert changed(before, all_tags()) == {"traefik", "seaweedfs"}


def test_a_base_change_moves_every_tag(contexts: Path) -> None:
    before = all_tags()
    sources = contexts / "base" / "sources.list"
    sources.write_text(sources.read_text() + "# changed\n")
    assert changed(before, all_tags()) == set(before)


def test_the_server_dockerfile_moves_only_the_server(contexts: Path) -> None:
    before = all_tags()
    with (contexts / "server" / "Dockerfile").open("a") as dockerfile:
        dockerfile.write("LABEL x=y\n")
    assert changed(before, all_tags()) == {"server"}


def test_a_pin_change_moves_the_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    before = all_tags()
    bumped = [
        dataclasses.replace(image, pins={**image.pins, "POSTGRES_MAJOR": "16"})
        if image.name == "postgres" else image
        for image in catalog.CATALOG
    ]
    monkeypatch.setattr(catalog, "CATALOG", tuple(bumped))
    assert changed(before, catalog.compute_tags(bumped)) == {"postgres"}


@pytest.mark.parametrize(("image", "moved"), [
    ("traefik", {"traefik"}),
    ("mlflow", {"mlflow"}),
    ("torchserve", {"torchserve"}),
    ("server", {"server"}),
    ("model-sync", {"model-sync"}),
])
def test_a_lock_change_moves_the_images_built_from_it(
    contexts: Path, image: str, moved: set[str],
) -> None:
    before = all_tags()
    lock = contexts / image / "requirements.lock"
    lock.write_text(lock.read_text() + "# re-locked\n")
    assert changed(before, all_tags()) == moved


def test_a_source_change_moves_only_swarmais_own_images(checkout: Path) -> None:
    before = all_tags()
    with (checkout / "swarmai" / "incontainer" / "server" / "__main__.py").open("a") as module:
        module.write("# changed\n")
    assert changed(before, all_tags()) == {"server", "model-sync"}


def test_a_pyproject_beside_the_package_moves_nothing(checkout: Path) -> None:
    """The images' dependencies come from their locks, so a wheel and a checkout agree."""
    before = all_tags()
    (checkout / "pyproject.toml").write_text('[project]\nname = "swarmai"\n# changed\n')
    assert all_tags() == before


def test_caches_and_build_contexts_do_not_move_the_server_tag(checkout: Path) -> None:
    before = all_tags()
    cache = checkout / "swarmai" / "__pycache__"
    cache.mkdir()
    (cache / "cli.cpython-311.pyc").write_bytes(b"\0compiled")
    dockerfile = checkout / "swarmai" / "images" / "contexts" / "torchserve" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "# changed\n")
    assert all_tags() == before


def test_digest_frames_its_inputs() -> None:
    assert catalog.digest({"a": b"bc"}) != catalog.digest({"ab": b"c"})
    assert catalog.digest({"a": b"", "b": b""}) != catalog.digest({"a": b"b"})
    assert catalog.digest({"x": b"1", "y": b"2"}) == catalog.digest({"y": b"2", "x": b"1"})
