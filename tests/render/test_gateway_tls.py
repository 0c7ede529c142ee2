"""gateway.tls, rendered: each mode's entry points, certificates, router TLS and mounts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from swarmai.render import gateway
from swarmai.spec import Stack

Render = Callable[..., dict[str, Any]]


def _stack(**gateway_settings: Any) -> Stack:
    return Stack.model_validate({
        "version": 1, "name": "s", "gateway": gateway_settings,
        "models": [{"name": "m", "runtime": "fastapi", "model": "models:/m@production"}],
    })


def _router_labels(document: dict[str, Any]) -> dict[str, str]:
    service = document["services"]["model-m"]
    labels: dict[str, str] = service.get("labels") or service["deploy"]["labels"]
    return {k.removeprefix("traefik.http.routers.s-m."): v for k, v in labels.items()
            if k.startswith("traefik.http.routers.")}


@pytest.mark.parametrize("target", ["swarm", "compose"])
def test_local_tls_serves_https_from_the_secret_and_redirects_http(
        main_document: Render, target: str) -> None:
    stack = _stack(port=8080, https_port=8443)
    static = gateway.static_config(stack, target)  # type: ignore[arg-type]
    assert static["entryPoints"]["websecure"] == {"address": ":443"}
    assert static["entryPoints"]["web"]["http"]["redirections"]["entryPoint"] == {
        "to": ":8443", "scheme": "https", "permanent": True}
    certificate = gateway.dynamic_config(stack)["tls"]["stores"]["default"]
    assert certificate == {"defaultCertificate": {"certFile": "/run/secrets/gateway-tls",
                                                  "keyFile": "/run/secrets/gateway-tls"}}
    document = main_document(stack, target)
    proxy = document["services"]["gateway"]
    assert {"source": "gateway-tls", "target": "gateway-tls"} in proxy["secrets"]
    assert [(int(p["published"]), p["target"]) for p in proxy["ports"]] == [
        (8080, 80), (8443, 443)]
    labels = _router_labels(document)
    assert (labels["entrypoints"], labels["tls"]) == ("websecure", "true")


def test_tls_off_is_plain_http_with_no_certificate(main_document: Render) -> None:
    stack = _stack(tls={"mode": "off"})
    static = gateway.static_config(stack, "compose")
    assert static["entryPoints"]["web"] == {"address": ":80"}
    assert "websecure" not in static["entryPoints"]
    assert "tls" not in gateway.dynamic_config(stack)
    document = main_document(stack, "compose")
    proxy = document["services"]["gateway"]
    assert "secrets" not in proxy and [p["target"] for p in proxy["ports"]] == [80]
    labels = _router_labels(document)
    assert labels["entrypoints"] == "web" and "tls" not in labels


def test_acme_certifies_its_names_and_keeps_them_in_a_volume(main_document: Render) -> None:
    stack = _stack(tls={"mode": "acme", "acme_email": "ops@example.com",
                        "names": ["models.example.com", "ml.example.com"],
                        "acme_ca_server": "https://acme.internal/directory"})
    static = gateway.static_config(stack, "swarm")
    assert static["certificatesResolvers"] == {"acme": {"acme": {
        "email": "ops@example.com", "storage": "/etc/traefik/acme/acme.json",
        "tlsChallenge": {}, "caServer": "https://acme.internal/directory"}}}
    assert "tls" not in gateway.dynamic_config(stack)
    document = main_document(stack, "swarm")
    assert {"type": "volume", "source": "gateway-acme", "target": "/etc/traefik/acme"} in [
        {k: v for k, v in m.items() if k in ("type", "source", "target")}
        for m in document["services"]["gateway"]["volumes"]]
    labels = _router_labels(document)
    assert labels["tls.certresolver"] == "acme"
    assert (labels["tls.domains[0].main"], labels["tls.domains[1].main"]) == (
        "models.example.com", "ml.example.com")


def test_your_certificate_is_the_secret_you_name(main_document: Render) -> None:
    stack = _stack(tls={"mode": "secret", "secret": "company-cert"})
    default = gateway.dynamic_config(stack)["tls"]["stores"]["default"]["defaultCertificate"]
    assert default["certFile"] == default["keyFile"] == "/run/secrets/company-cert"
    document = main_document(stack, "swarm")
    assert document["secrets"]["company-cert"] == {"external": True}


def test_the_dashboard_and_a_canary_are_served_over_tls() -> None:
    stack = _stack(dashboard=True, auth={"basic_users_secret": "logins"})
    dashboard = gateway.dynamic_config(stack)["http"]["routers"]["dashboard"]
    assert dashboard["tls"] == {} and dashboard["middlewares"] == ["auth"]
    canary = gateway.canary_config(stack, stack.models[0], 10, "swarm")
    (router,) = canary["http"]["routers"].values()
    assert router["entryPoints"] == ["websecure"] and router["tls"] == {}
