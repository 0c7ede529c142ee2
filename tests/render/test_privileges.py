"""Least privilege in every rendered service: a non-root user without a capability,
or a ``swarmai.runs-as-root`` label that says why not (issue 12)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from swarmai.render import render_bundle
from swarmai.render.naming import ROOT_LABEL
from swarmai.spec import load_stack

REPO = Path(__file__).resolve().parents[2]
STACKS = sorted((REPO / "stacks").glob("*.yaml")) + sorted(
    (Path(__file__).resolve().parent / "stacks").glob("*.yaml"))
CASES = [(stack, target) for stack in STACKS for target in ("compose", "swarm")]


def _services(stack_path: Path, target: str) -> dict[str, dict[str, Any]]:
    bundle = render_bundle(load_stack(stack_path, target), target)  # type: ignore[arg-type]
    services: dict[str, dict[str, Any]] = yaml.safe_load(bundle.files[bundle.main])["services"]
    return services


def _labels(service: dict[str, Any], target: str) -> dict[str, str]:
    labels: dict[str, str] = (service.get("deploy", {}) if target == "swarm" else service).get(
        "labels", {})
    return labels


def _non_root(user: str | None) -> bool:
    return user is not None and user.partition(":")[0] not in ("", "0", "root")


@pytest.mark.parametrize(("stack_path", "target"), CASES, ids=lambda v: getattr(v, "stem", v))
def test_every_service_is_non_root_without_capabilities_or_says_why(
        stack_path: Path, target: str) -> None:
    for name, service in _services(stack_path, target).items():
        reason = _labels(service, target).get(ROOT_LABEL)
        if _non_root(service.get("user")):
            assert service.get("cap_drop") == ["ALL"], name
            assert reason is None, f"{name} runs as {service['user']} yet says it is root"
        else:
            assert reason, f"{name} runs as root and does not say why"


def test_which_services_stay_root_and_how() -> None:
    services = _services(REPO / "stacks" / "dev.yaml", "compose")
    root = {name for name, service in services.items() if not _non_root(service.get("user"))}
    assert root == {"gateway", "engine-proxy", "mlflow", "s3"}
    # Root without a capability: it owns its files, and nothing else.
    assert all(services[name]["cap_drop"] == ["ALL"] for name in root)
    assert services["model-iris"]["user"] == "10001:10001"
    assert services["registry-proxy"]["user"] == "65534:65534"
    assert services["registry-proxy"]["read_only"] is True
    assert all(s["security_opt"] == ["no-new-privileges:true"]
               for s in services.values() if "cap_drop" in s)


def test_external_runtimes_run_as_their_images_users() -> None:
    services = _services(REPO / "stacks" / "vision.yaml", "swarm")
    users = {name: service.get("user") for name, service in services.items()}
    assert users["model-bert"] == "10001:10001"  # TF Serving only reads its store
    assert users["model-resnet"] == "1000:1000"  # TorchServe's model-server
    assert users["sync-bert"] == users["sync-resnet"] == "10001:10001"
    assert services["sync-bert"]["read_only"] is True  # its volumes and a tmpfs /tmp
    assert {"type": "tmpfs", "target": "/tmp"} in services["sync-bert"]["volumes"]
    # Postgres's entrypoint needs root to hand the data directory to postgres.
    assert ROOT_LABEL in services["postgres"]["deploy"]["labels"]


def test_an_app_says_its_user_is_its_images() -> None:
    services = _services(Path(__file__).resolve().parent / "stacks" / "app.yaml", "compose")
    apps = [s for s in services.values() if s.get("labels", {}).get("swarmai.runtime") == "app"]
    assert apps
    for app in apps:
        assert "user" not in app and "USER in its Dockerfile" in app["labels"][ROOT_LABEL]
