"""Properties of the single-node Compose file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from swarmai.spec import Stack, load_stack

REPO = Path(__file__).resolve().parents[2]
Render = Callable[..., dict[str, Any]]


def test_gpus_are_device_ids_reservations(vision: Stack, main_document: Render) -> None:
    services = main_document(load_stack(REPO / "stacks/vision.yaml", "compose"),
                             "compose")["services"]
    assert services["model-resnet"]["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "device_ids": ["0"], "capabilities": ["gpu"]}
    ]
    assert "generic_resources" not in str(services)


def test_labels_are_container_labels_for_the_docker_provider(main_document: Render) -> None:
    dev = load_stack(REPO / "stacks/dev.yaml")
    services = main_document(dev, "compose")["services"]
    labels = services["model-churn"]["labels"]
    assert labels["traefik.docker.network"] == "dev_models"
    assert labels["traefik.http.services.dev-churn.loadbalancer.server.port"] == "8000"
    assert services["model-churn"]["deploy"]["replicas"] == 2


def test_servers_wait_for_what_they_need(main_document: Render) -> None:
    dev = load_stack(REPO / "stacks/dev.yaml")
    services = main_document(dev, "compose")["services"]
    assert services["model-iris"]["depends_on"] == {
        "registry-proxy": {"condition": "service_healthy"}}
    assert services["registry-proxy"]["depends_on"] == {"mlflow": {"condition": "service_healthy"}}
    assert services["mlflow"]["depends_on"] == {"s3": {"condition": "service_healthy"}}
    assert all(s["restart"] == "unless-stopped" for s in services.values())


def test_the_gateway_and_engine_proxy_gain_no_privileges(main_document: Render) -> None:
    dev = load_stack(REPO / "stacks/dev.yaml")
    document = main_document(dev, "compose")
    services = document["services"]
    for name in ("gateway", "engine-proxy"):
        assert services[name]["cap_drop"] == ["ALL"] and services[name]["read_only"] is True
        assert services[name]["security_opt"] == ["no-new-privileges:true"]
    # Traefik reads the engine only once the proxy answers; nothing else shares its network.
    assert services["gateway"]["depends_on"] == {"engine-proxy": {"condition": "service_healthy"}}
    assert document["networks"]["engine"] == {"internal": True}


def test_secrets_come_from_files_next_to_the_compose_file(main_document: Render) -> None:
    dev = load_stack(REPO / "stacks/dev.yaml")
    document = main_document(dev, "compose")
    assert document["secrets"] == {"s3-creds": {"file": "./secrets/s3-creds"},
                                   "gateway-tls": {"file": "./secrets/gateway-tls"}}
    assert document["name"] == "dev"


def test_external_storage_renders_no_store(main_document: Render) -> None:
    cpu = load_stack(REPO / "stacks/cpu.yaml")
    services = main_document(cpu, "compose")["services"]
    assert "s3" not in services
    assert services["mlflow"]["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://s3.internal:9000"
    assert services["mlflow"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
