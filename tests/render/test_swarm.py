"""Properties of the Swarm stack file that Traefik, the scheduler and rolling updates rely on."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from swarmai.render import gateway, render_bundle
from swarmai.spec import Stack

Render = Callable[..., dict[str, Any]]


def test_traefik_labels_are_on_the_service_with_the_mandatory_port(
    vision: Stack, main_document: Render
) -> None:
    services = main_document(vision, "swarm")["services"]
    churn = services["model-churn"]
    assert "labels" not in churn, "Traefik ignores container labels on Swarm"
    labels = churn["deploy"]["labels"]
    assert labels["traefik.http.services.vision-churn.loadbalancer.server.port"] == "8000"
    # As written in stack.yml, `$` is doubled for `stack deploy` interpolation.
    assert labels["traefik.http.routers.vision-churn.rule"] == (
        "(Path(`/churn`) || PathPrefix(`/churn/`)) && !PathRegexp("
        "`^/churn/(metrics|docs|redoc|openapi\\.json|monitoring)([/;%].*)?$$`)"
    )
    assert labels["traefik.swarm.network"] == "vision_models"
    assert labels["traefik.http.routers.vision-churn.middlewares"] == (
        "auth@file,strip-churn@file,retry@file"
    )
    assert services["model-bert"]["deploy"]["labels"][
        "traefik.http.services.vision-bert.loadbalancer.server.port"] == "8501"


def test_each_pinned_device_is_its_own_generic_resource_on_its_node(
    vision: Stack, main_document: Render
) -> None:
    services = main_document(vision, "swarm")["services"]
    resnet = services["model-resnet"]
    assert resnet["deploy"]["placement"]["constraints"] == ["node.hostname == gpu-a"]
    assert resnet["deploy"]["resources"]["reservations"]["generic_resources"] == [
        {"discrete_resource_spec": {"kind": "swarmai-gpu-gpu-a-0", "value": 1}}
    ]
    assert resnet["environment"]["NVIDIA_VISIBLE_DEVICES"] == "0"
    bert = services["model-bert"]["deploy"]["resources"]["reservations"]["generic_resources"]
    assert bert[0]["discrete_resource_spec"]["kind"] == "swarmai-gpu-gpu-a-1"
    # Services without GPUs must not inherit a CUDA image's NVIDIA_VISIBLE_DEVICES=all.
    assert services["model-churn"]["environment"]["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert services["gateway"]["environment"]["NVIDIA_VISIBLE_DEVICES"] == "void"


def test_shared_gpus_are_placed_but_not_reserved(write_stack: Callable[..., Any],
                                                  main_document: Render) -> None:
    from swarmai.spec import load_stack

    path = write_stack("""
        version: 1
        name: shared
        nodes: {gpu-a: {gpus: ["0"]}}
        models:
          - {name: a, runtime: fastapi, model: "models:/a@prod",
             gpus: {node: gpu-a, devices: ["0"], share: true}, replicas: 2}
          - {name: b, runtime: fastapi, model: "models:/b@prod",
             gpus: {node: gpu-a, devices: ["0"], share: true}}
    """)
    services = main_document(load_stack(path), "swarm")["services"]
    for name in ("model-a", "model-b"):
        assert "resources" not in services[name]["deploy"]
        assert services[name]["environment"]["NVIDIA_VISIBLE_DEVICES"] == "0"
        assert services[name]["deploy"]["placement"]["constraints"] == ["node.hostname == gpu-a"]
        assert services[name]["deploy"]["update_config"]["order"] == "start-first"


def test_rolling_updates_start_first_roll_back_and_outlast_the_health_window(
    vision: Stack, main_document: Render
) -> None:
    services = main_document(vision, "swarm")["services"]
    churn = services["model-churn"]
    update = churn["deploy"]["update_config"]
    assert update["order"] == "start-first"
    assert update["failure_action"] == "rollback"
    health = churn["healthcheck"]
    window = (_seconds(health["start_period"]) + _seconds(health["interval"]) * health["retries"])
    assert _seconds(update["monitor"]) > window
    # An exclusive GPU cannot be held twice: that service must stop first.
    assert services["model-resnet"]["deploy"]["update_config"]["order"] == "stop-first"


def test_a_registry_service_named_to_roll_stop_first_does_so_this_time(vision: Stack) -> None:
    """MLflow on Postgres rolls start-first, except when its next image migrates the
    schema (deploy names it, from the upgrade verdicts): the old one must not write
    to the migrated database meanwhile.  Nothing else changes."""
    import yaml

    def document(**options: Any) -> Any:
        bundle = render_bundle(vision, "swarm", **options)
        return yaml.safe_load(bundle.files[bundle.main])

    usual, migrating = document(), document(stop_first=frozenset({"mlflow"}))
    for roll in ("update_config", "rollback_config"):
        assert usual["services"]["mlflow"]["deploy"][roll]["order"] == "start-first"
        assert migrating["services"]["mlflow"]["deploy"][roll]["order"] == "stop-first"
        migrating["services"]["mlflow"]["deploy"][roll]["order"] = "start-first"
    assert migrating == usual


@pytest.mark.parametrize(("ipvs", "endpoint_mode", "port_mode"), [(False, "dnsrr", "host"),
                                                                   (True, None, "ingress")])
def test_ipvs_decides_endpoint_mode_and_port_mode(
    vision: Stack, main_document: Render, ipvs: bool, endpoint_mode: str | None, port_mode: str
) -> None:
    services = main_document(vision, "swarm", ipvs=ipvs)["services"]
    for service in services.values():
        assert service["deploy"].get("endpoint_mode") == endpoint_mode
    assert services["gateway"]["ports"] == [
        {"target": 80, "published": 80, "protocol": "tcp", "mode": port_mode},
        {"target": 443, "published": 443, "protocol": "tcp", "mode": port_mode},
    ]


def test_only_the_engine_proxy_holds_the_docker_socket(
    vision: Stack, main_document: Render
) -> None:
    services = main_document(vision, "swarm")["services"]
    socket = {name for name, service in services.items()
              for volume in service.get("volumes", [])
              if volume.get("source") == "/var/run/docker.sock"}
    assert socket == {"engine-proxy"}
    proxy, gateway = services["engine-proxy"], services["gateway"]
    # Both on a manager (the Swarm API is a manager's), both on the internal
    # network, and nothing else on it; the proxy publishes nothing.
    for service in (proxy, gateway):
        assert service["deploy"]["placement"]["constraints"] == ["node.role == manager"]
    assert {n for n, s in services.items() if "engine" in s["networks"]} == {
        "gateway", "engine-proxy"}
    assert "ports" not in proxy
    # Both hold no capability on a read-only root file system, and say why they are root.
    for service in (proxy, gateway):
        assert service["cap_drop"] == ["ALL"] and service["read_only"] is True
        assert service["deploy"]["labels"]["swarmai.runs-as-root"]
    assert {"type": "tmpfs", "target": "/tmp"} in gateway["volumes"]


def test_the_engine_network_is_internal(vision: Stack, main_document: Render) -> None:
    network = main_document(vision, "swarm")["networks"]["engine"]
    assert network == {"driver": "overlay", "internal": True}


def test_traefik_reads_the_engine_through_the_proxy(vision: Stack) -> None:
    for target, provider in (("swarm", "swarm"), ("compose", "docker")):
        config = gateway.static_config(vision, target)
        assert config["providers"][provider]["endpoint"] == "tcp://engine-proxy:2375"


def test_only_the_gateway_port_is_published(vision: Stack, main_document: Render) -> None:
    services = main_document(vision, "swarm")["services"]
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"gateway"}


def test_secrets_are_external_and_never_values(vision: Stack, main_document: Render) -> None:
    document = main_document(vision, "swarm")
    assert document["secrets"] == {
        "gateway-htpasswd": {"external": True},
        "gateway-tls": {"external": True},
        "s3-creds": {"external": True},
        "mlflow-db-password": {"external": True},
    }
    for service in document["services"].values():
        for key in service.get("environment", {}):
            assert not re.search(r"PASSWORD$|SECRET_ACCESS_KEY$|ACCESS_KEY_ID$", key), key


def test_config_names_follow_their_content(vision: Stack) -> None:
    bundle = render_bundle(vision, "swarm", ipvs=False)
    changed = vision.model_copy(update={"gateway": vision.gateway.model_copy(
        update={"dashboard": True})})
    other = render_bundle(changed, "swarm", ipvs=False)
    import yaml

    before = yaml.safe_load(bundle.files["stack.yml"])["configs"]
    after = yaml.safe_load(other.files["stack.yml"])["configs"]
    assert before["traefik-static"]["name"] != after["traefik-static"]["name"]
    assert before["mlflow-entrypoint"]["name"] == after["mlflow-entrypoint"]["name"]
    assert before["traefik-static"]["name"].startswith("vision_traefik-static_")


def test_rendering_is_deterministic(vision: Stack) -> None:
    assert render_bundle(vision, "swarm").files == render_bundle(vision, "swarm").files


def _seconds(duration: str) -> int:
    assert duration.endswith("s")
    return int(duration[:-1])
