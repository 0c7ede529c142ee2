"""What promotion renders: pinned FastAPI versions, the canary service, the weighted route."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from swarmai.lifecycle.steps import serving_from
from swarmai.registry_client import CheckResult
from swarmai.render import Serving, gateway, render_bundle
from swarmai.render.bundle import dump_yaml
from swarmai.spec import Stack


def _services(stack: Stack, serving: Serving | None = None) -> dict[str, Any]:
    bundle = render_bundle(stack, "swarm", ipvs=False, serving=serving)
    services: dict[str, Any] = yaml.safe_load(bundle.files["stack.yml"])["services"]
    return services


def _env(service: dict[str, Any]) -> dict[str, str]:
    environment: dict[str, str] = service["environment"]
    return environment


def test_a_fastapi_model_is_pinned_to_the_version_its_alias_resolved_to(vision: Stack) -> None:
    unpinned = _services(vision)["model-churn"]
    assert _env(unpinned)["MODEL_URI"] == "models:/churn@production"
    pinned = _services(vision, Serving(pinned={"churn": "7"}))["model-churn"]
    assert _env(pinned)["MODEL_URI"] == "models:/churn/7"
    # Only what a version changes differs: same routes, same roll policy.
    assert pinned["deploy"]["labels"] == {**unpinned["deploy"]["labels"],
                                          "swarmai.model-uri": "models:/churn/7"}
    assert pinned["deploy"]["update_config"] == unpinned["deploy"]["update_config"]


def test_external_runtimes_keep_following_their_alias(vision: Stack) -> None:
    # TF Serving's sync lays out each new version beside the old: no roll needed.
    services = _services(vision, Serving(pinned={"resnet": "4", "bert": "9"}))
    assert _env(services["sync-resnet"])["MODEL_URI"] == "models:/resnet@production"


def test_a_canary_is_one_unrouted_replica_of_the_pinned_new_version(vision: Stack) -> None:
    services = _services(vision, Serving(pinned={"churn": "7"}, canaries={"churn": "8"}))
    canary = services["model-churn-canary"]
    assert _env(canary)["MODEL_URI"] == "models:/churn/8"
    assert canary["deploy"]["replicas"] == 1
    labels = canary["deploy"]["labels"]
    assert not any(key.startswith("traefik.") for key in labels), labels
    assert labels["swarmai.canary-of"] == "churn"
    assert _env(services["model-churn"])["MODEL_URI"] == "models:/churn/7"


def test_the_canary_file_splits_the_route_by_weight(vision: Stack) -> None:
    churn = next(m for m in vision.models if m.name == "churn")
    config = yaml.safe_load(dump_yaml(gateway.canary_config(vision, churn, 25, "swarm")))
    router = config["http"]["routers"]["vision-churn-canary"]
    # The label router's rule: the canary keeps the private paths off the route.
    assert router["rule"] == gateway.router_labels(vision, churn, 8000, "swarm")[
        "traefik.http.routers.vision-churn.rule"]
    assert "!PathRegexp(`^/churn/(metrics|" in router["rule"]
    assert router["priority"] > 1000  # above the label router's rule-length priority
    assert router["middlewares"] == ["auth", "strip-churn", "retry"]
    weighted = config["http"]["services"]["vision-churn-weighted"]["weighted"]["services"]
    assert weighted == [{"name": "vision-churn@swarm", "weight": 75},
                        {"name": "vision-churn-canary", "weight": 25}]
    servers = config["http"]["services"]["vision-churn-canary"]["loadBalancer"]["servers"]
    assert servers == [{"url": "http://model-churn-canary:8000"}]


def test_the_gateway_reads_dynamic_files_from_a_volume(vision: Stack) -> None:
    volumes = _services(vision)["gateway"]["volumes"]
    assert {"type": "volume", "source": "gateway-dynamic",
            "target": "/etc/traefik/dynamic"} in volumes


def test_serving_comes_from_the_registry_check(vision: Stack) -> None:
    results = [
        CheckResult("models:/churn@production", found=True, version=5, canary=6),
        CheckResult("models:/resnet@production", found=True, version=2),
        CheckResult("models:/bert/3", found=True, version=3),
    ]
    assert serving_from(vision, results) == Serving(pinned={"churn": "5"},
                                                    canaries={"churn": "6"})


def test_canaries_are_refused_for_external_runtimes(vision: Stack) -> None:
    with pytest.raises(ValueError, match="canaries are for fastapi models"):
        render_bundle(vision, "swarm", serving=Serving(canaries={"resnet": "2"}))
