"""The gateway/ and registry/ asset folders: found in a checkout and in a wheel, and used.

They are the files the code reads (no second copies): the gateway's image
context, static-configuration defaults and middlewares; the registry's image
contexts, entrypoints (with the bucket bootstrap), example models and example
promotion policy.  A wheel ships them inside the package, as swarmai/_assets/.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from swarmai import assets
from swarmai.errors import OperationError
from swarmai.promotion.policy import load_policy
from swarmai.render import gateway, render_bundle
from swarmai.render.scripts import script
from swarmai.spec import load_stack

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def fresh() -> Iterator[None]:
    """Forget what was found and parsed, before and after the test."""
    caches = (assets.folder, gateway._parsed, script)
    for cached in caches:
        cached.cache_clear()
    yield
    for cached in caches:
        cached.cache_clear()


def test_a_checkout_uses_its_top_level_folders() -> None:
    assert assets.folder("gateway") == REPO / "gateway"
    assert assets.folder("registry") == REPO / "registry"
    assert assets.path("gateway", "image/Dockerfile").is_file()


def test_an_installed_wheels_copy_comes_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh: None,
) -> None:
    installed = tmp_path / "_assets"
    shutil.copytree(REPO / "gateway", installed / "gateway")
    monkeypatch.setattr(assets, "INSTALLED", installed)
    assert assets.folder("gateway") == installed / "gateway"
    assert assets.folder("registry") == REPO / "registry"


def test_missing_assets_say_where_they_were_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh: None,
) -> None:
    monkeypatch.setattr(assets, "INSTALLED", tmp_path / "_assets")
    monkeypatch.setattr(assets, "CHECKOUT", tmp_path)
    with pytest.raises(OperationError, match="reinstall swarmai") as caught:
        assets.folder("registry")
    assert str(tmp_path / "_assets" / "registry") in str(caught.value)


def test_the_example_policy_validates_with_the_real_loader() -> None:
    example = assets.path("registry", "examples/policy.example.yaml")
    loaded = load_policy(example)
    assert loaded.stack_path == REPO / "stacks" / "dev.yaml"
    assert [rule.model for rule in loaded.policy.models] == ["iris", "churn"]
    assert loaded.warnings == ()


def test_the_bucket_bootstrap_is_inlined_into_the_mlflow_entrypoint() -> None:
    bootstrap = assets.read_text("registry", "entrypoints/bucket_bootstrap.py")
    _header, _, body = bootstrap.partition("\n\n")
    rendered = script("mlflow-entrypoint.sh")
    assert "swarmai-include" not in rendered
    assert f"python3 - <<'PY'\n{body}PY\n" in rendered
    assert "# Environment:" not in rendered  # the bootstrap's own header stays out
    compile(bootstrap, "bucket_bootstrap.py", "exec")


def test_a_middleware_added_to_the_file_joins_every_route(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh: None,
) -> None:
    installed = tmp_path / "_assets"
    shutil.copytree(REPO / "gateway", installed / "gateway")
    with (installed / "gateway" / "middlewares.yml").open("a") as middlewares:
        middlewares.write("compress:\n  compress: {}\n")
    monkeypatch.setattr(assets, "INSTALLED", installed)
    stack = load_stack(REPO / "stacks" / "dev.yaml", "swarm")
    bundle = render_bundle(stack, "swarm")
    dynamic = yaml.safe_load(bundle.files[gateway.DYNAMIC_PATH])
    assert list(dynamic["http"]["middlewares"])[:2] == ["retry", "compress"]
    labels = yaml.safe_load(bundle.files[bundle.main])["services"]["model-iris"]["deploy"]["labels"]
    chain = next(v for k, v in labels.items() if k.endswith(".middlewares"))
    assert chain.endswith("strip-iris@file,retry@file,compress@file")


def test_a_static_default_swarmai_fills_in_must_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh: None,
) -> None:
    installed = tmp_path / "_assets"
    shutil.copytree(REPO / "gateway", installed / "gateway")
    defaults = installed / "gateway" / gateway.STATIC_DEFAULTS
    defaults.write_text(defaults.read_text().replace("    directory: ~\n", ""))
    monkeypatch.setattr(assets, "INSTALLED", installed)
    stack = load_stack(REPO / "stacks" / "dev.yaml", "swarm")
    with pytest.raises(OperationError, match=r"has no providers\.file\.directory"):
        gateway.static_config(stack, "swarm")


@pytest.mark.parametrize("refresh", ["10", "5", "0", "soon"])
def test_a_swarm_poll_slower_than_deregistration_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh: None, refresh: str,
) -> None:
    """Zero failed requests in a rollout need Traefik to drop a task before it stops."""
    installed = tmp_path / "_assets"
    shutil.copytree(REPO / "gateway", installed / "gateway")
    defaults = installed / "gateway" / gateway.STATIC_DEFAULTS
    text = defaults.read_text().replace("refreshSeconds: 2", f"refreshSeconds: {refresh}")
    defaults.write_text(text)
    monkeypatch.setattr(assets, "INSTALLED", installed)
    stack = load_stack(REPO / "stacks" / "dev.yaml", "swarm")
    with pytest.raises(OperationError, match=r"providers\.swarm\.refreshSeconds is .* below 5"):
        gateway.static_config(stack, "swarm")
    assert gateway.static_config(stack, "compose")["providers"]["docker"]["watch"] is True


def test_the_wheel_ships_the_asset_folders_inside_the_package(tmp_path: Path) -> None:
    # Built from a copy: setuptools leaves a build/ folder behind, and reuses it.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for name in ("swarmai", *assets.FOLDERS):
        shutil.copytree(REPO / name, source / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path), str(source)],
        check=True, capture_output=True,
    )
    [wheel] = tmp_path.glob("swarmai-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        top_level = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
        assert archive.read(top_level).decode().split() == ["swarmai"]
    assert {name.split("/")[0] for name in names} == {"swarmai", wheel.name.split("-py3")[0]
                                                      + ".dist-info"}
    for folder in assets.FOLDERS:
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                relative = path.relative_to(REPO).as_posix()
                assert f"swarmai/_assets/{relative}" in names, relative
    contexts = REPO / "swarmai" / "images" / "contexts"
    for path in contexts.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            assert path.relative_to(REPO).as_posix() in names
    assert "swarmai/py.typed" in names


def test_the_schema_check_is_inlined_into_the_mlflow_entrypoint() -> None:
    check = assets.read_text("registry", "entrypoints/schema_state.py")
    _header, _, body = check.partition("\n\n")
    rendered = script("mlflow-entrypoint.sh")
    assert f"schema=$(python3 - <<'PY' || echo unknown\n{body}PY\n)" in rendered
    assert body.startswith("import importlib.util")  # the header alone is left out
