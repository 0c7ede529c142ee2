"""What gets built, in which order, from which files; and how a failed build reads."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from swarmai import __version__, assets, engine
from swarmai.errors import UsageError
from swarmai.images import build, catalog, source


def names(images: list[catalog.ImageDef]) -> list[str]:
    return [image.name for image in images]


def test_without_offline_only_swarmais_own_images_and_their_base_are_built() -> None:
    assert names(catalog.plan(offline=False)) == ["base", "server", "model-sync", "engine-proxy"]


def test_offline_builds_everything_base_first() -> None:
    order = names(catalog.plan(offline=True))
    assert order[0] == "base"
    assert set(order) == {"base", "traefik", "seaweedfs", "mlflow", "postgres", "torchserve",
                          "server", "model-sync", "engine-proxy"}
    assert all(catalog.BY_NAME[name].parent in (None, "base") for name in order)


@pytest.mark.parametrize(("only", "expected"), [
    (["postgres"], ["base", "postgres"]),
    (["fastapi"], ["base", "server"]),
    (["server"], ["base", "server"]),
    # model-sync has its own venv on the base image, not the server's packages.
    (["model-sync"], ["base", "model-sync"]),
    (["model-sync", "traefik"], ["base", "traefik", "model-sync"]),
    (["base"], ["base"]),
])
def test_only_brings_the_images_it_is_built_from(only: list[str], expected: list[str]) -> None:
    assert names(catalog.plan(offline=False, only=only)) == expected


def test_only_rejects_an_unknown_image() -> None:
    with pytest.raises(UsageError, match="tfserving"):
        catalog.plan(offline=True, only=["tfserving"])


def test_build_args_carry_the_pins_and_the_parent_tag() -> None:
    tags = catalog.compute_tags()
    mlflow = catalog.BY_NAME["mlflow"]
    assert catalog.build_args(mlflow, tags) == {**mlflow.pins, "BASE": tags["base"]}
    sync = catalog.build_args(catalog.BY_NAME["model-sync"], tags)
    assert sync == {"BASE": tags["base"]}


def test_every_build_arg_is_declared_in_its_dockerfile() -> None:
    tags = catalog.compute_tags()
    for image in catalog.CATALOG[1:]:
        dockerfile = catalog.context_files(image)["Dockerfile"].decode()
        for arg in catalog.build_args(image, tags):
            assert f"ARG {arg}" in dockerfile, (image.name, arg)


def test_the_contexts_live_with_what_they_belong_to() -> None:
    assert catalog.context_dir("traefik") == assets.folder("gateway") / "image"
    for name in ("mlflow", "seaweedfs", "postgres"):
        assert catalog.context_dir(name) == assets.folder("registry") / "images" / name
    for name in ("base", "shared", "server", "model-sync", "torchserve"):
        assert catalog.context_dir(name) == catalog.CONTEXTS / name


def test_no_dockerfile_pulls_a_frontend_or_an_image_from_a_registry() -> None:
    for image in catalog.CATALOG[1:]:
        dockerfile = catalog.context_files(image)["Dockerfile"].decode()
        assert "# syntax" not in dockerfile
        froms = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("FROM")]
        assert froms and all(f in ("${BASE}", "${SERVER}") for f in froms), image.name


def test_staging_writes_an_installable_copy_without_the_build_contexts(
    checkout: Path, tmp_path: Path,
) -> None:
    target = tmp_path / "context"
    target.mkdir()
    source.stage(target, source.source_files())
    src = target / "src"
    pyproject = tomllib.loads((src / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "swarmai"
    assert pyproject["project"]["version"] == __version__
    # The image's dependencies come from its lock, never from here.
    assert "dependencies" not in pyproject["project"]
    assert (src / "swarmai" / "incontainer" / "server" / "__main__.py").is_file()
    assert (src / "swarmai" / "py.typed").is_file()
    assert not (src / "swarmai" / "images" / "contexts").exists()
    assert not list(target.glob("requirements*"))


def test_the_source_is_the_package_alone_so_a_wheel_gives_the_same_files(
    checkout: Path,
) -> None:
    """A checkout's pyproject.toml, or an installed wheel's assets, change nothing."""
    before = source.source_files()
    (checkout / "pyproject.toml").write_text('[project]\nname = "swarmai"\n')
    (checkout / "swarmai" / "_assets" / "gateway").mkdir(parents=True)
    (checkout / "swarmai" / "_assets" / "gateway" / "middlewares.yml").write_text("{}\n")
    (checkout / "swarmai" / ".cli.py.swp").write_bytes(b"an editor's")
    assert source.source_files() == before
    assert all(not path.startswith("swarmai/_assets/") for path in before)


BUILDKIT_FAILURE = """\
#5 6.4 ERROR: No matching distribution found for nothing==1
#5 ERROR: process "/bin/sh -c pip install nothing==1" did not complete successfully: exit code: 1
------
 > [stage-0 2/2] RUN pip install nothing==1:
6.4 ERROR: No matching distribution found for nothing==1
------
Dockerfile:12
--------------------
  12 | >>> RUN pip install nothing==1
--------------------
ERROR: failed to solve: process "/bin/sh -c pip install nothing==1" did not complete: exit code: 1
"""


def test_a_failed_build_reports_the_failing_step_and_the_error() -> None:
    lines = engine.buildkit_failure_lines(BUILDKIT_FAILURE.splitlines())
    assert lines[1].startswith(" > [stage-0 2/2] RUN")
    assert "No matching distribution found for nothing==1" in lines[2]
    assert lines[-1].startswith("ERROR: failed to solve")
    assert not any(line.startswith("  12 |") for line in lines)


def test_the_ca_bundle_comes_from_the_environment_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("PIP_CERT", str(bundle))
    assert build._ca_bundle() == str(bundle)
    monkeypatch.setenv("PIP_CERT", str(tmp_path / "missing.pem"))
    assert build._ca_bundle() != str(tmp_path / "missing.pem")


def test_the_build_stages_the_snapshot_its_tag_was_computed_from(
    checkout: Path, tmp_path: Path,
) -> None:
    snapshot = source.source_files()
    tag = catalog.compute_tags(sources=snapshot)["server"]
    module = checkout / "swarmai" / "errors.py"
    original = module.read_bytes()
    module.write_bytes(original + b"# edited while the images build\n")
    assert catalog.compute_tags()["server"] != tag
    assert catalog.compute_tags(sources=snapshot)["server"] == tag
    source.stage(tmp_path, snapshot)
    assert (tmp_path / "src" / "swarmai" / "errors.py").read_bytes() == original

