"""Gateway, registry and runtime renderers: the settings each external server needs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from swarmai.render import gateway, naming, render_bundle, runtimes
from swarmai.render.nodes import node_configs
from swarmai.spec import GatewayAuth, RateLimit, RouteRules, Stack, load_stack

REPO = Path(__file__).resolve().parents[2]
Render = Callable[..., dict[str, Any]]


def test_traefik_static_polls_swarm_fast_and_keeps_the_dashboard_private(vision: Stack) -> None:
    static = gateway.static_config(vision, "swarm")
    swarm = static["providers"]["swarm"]
    assert swarm["exposedByDefault"] is False
    assert swarm["refreshSeconds"] < 15
    assert swarm["constraints"] == "Label(`swarmai.stack`,`vision`)"
    assert static["api"] == {"dashboard": False, "insecure": False}
    assert static["providers"]["file"] == {"directory": "/etc/traefik/dynamic", "watch": True}


def test_route_rules_refuse_cheapest_first(vision: Stack) -> None:
    rules = RouteRules(rate_limit=RateLimit(average=5), max_body_mb=2,
                       allow_ips=("10.0.0.0/8", "192.0.2.7/32"))
    bert = vision.models[0].model_copy(update={"gateway": rules})
    stack = vision.model_copy(update={"models": (bert, *vision.models[1:])})
    middlewares = gateway.dynamic_config(stack)["http"]["middlewares"]
    name = bert.name
    assert middlewares[f"allow-{name}"] == {
        "ipAllowList": {"sourceRange": ["10.0.0.0/8", "192.0.2.7/32"]}}
    assert middlewares[f"ratelimit-{name}"] == {
        "rateLimit": {"average": 5, "period": "1s", "burst": 5}}
    assert middlewares[f"body-{name}"] == {"buffering": {"maxRequestBodyBytes": 2 * 1024**2}}
    labels = gateway.router_labels(stack, bert, 8501, "swarm")
    chain = labels[f"traefik.http.routers.{naming.router_name(stack, bert)}.middlewares"]
    # A stranger or a flood is refused before a password is checked, and a
    # body is buffered only for a client that logged in.
    assert chain.split(",")[:5] == [f"allow-{name}@file", f"ratelimit-{name}@file",
                                    "auth@file", f"body-{name}@file", f"strip-{name}@file"]
    # Models without rules get none of them.
    plain = vision.models[1]
    other = gateway.router_labels(stack, plain, 8080, "swarm")
    other_chain = other[f"traefik.http.routers.{naming.router_name(stack, plain)}.middlewares"]
    assert other_chain.split(",")[:2] == ["auth@file", f"strip-{plain.name}@file"]


def test_traefik_dynamic_has_strip_retry_and_auth(vision: Stack) -> None:
    middlewares = gateway.dynamic_config(vision)["http"]["middlewares"]
    assert middlewares["strip-churn"] == {"stripPrefix": {"prefixes": ["/churn"]}}
    assert middlewares["strip-bert"] == {"stripPrefix": {"prefixes": ["/models/bert"]}}
    assert middlewares["retry"]["retry"]["attempts"] >= 1
    assert middlewares["auth"]["basicAuth"]["usersFile"] == "/run/secrets/gateway-htpasswd"


def _with_logins(vision: Stack, **secrets: str) -> Stack:
    """``vision`` with a route's own login (``gateway.auth``) on each model named."""
    models = tuple(m.model_copy(update={"gateway": RouteRules(
        auth=GatewayAuth(basic_users_secret=secrets[m.name]))}) if m.name in secrets else m
        for m in vision.models)
    return vision.model_copy(update={"models": models})


def _chain(stack: Stack, name: str) -> list[str]:
    model = next(m for m in stack.models if m.name == name)
    labels = gateway.router_labels(stack, model, 8080, "swarm")
    return labels[f"traefik.http.routers.{naming.router_name(stack, model)}.middlewares"].split(",")


def test_a_route_with_its_own_login_gets_its_own_middleware(
        vision: Stack, main_document: Render) -> None:
    stack = _with_logins(vision, bert="bert-logins")
    middlewares = gateway.dynamic_config(stack)["http"]["middlewares"]
    assert middlewares["auth-bert"] == {"basicAuth": {
        "usersFile": "/run/secrets/bert-logins", "removeHeader": True}}
    assert middlewares["auth"]["basicAuth"]["usersFile"] == "/run/secrets/gateway-htpasswd"
    # In place of the stack's login, never beside it.
    assert _chain(stack, "bert")[:2] == ["auth-bert@file", "strip-bert@file"]
    assert _chain(stack, "churn")[:2] == ["auth@file", "strip-churn@file"]
    for target in ("swarm", "compose"):
        document = main_document(stack, target)
        mounted = [s["source"] for s in document["services"]["gateway"]["secrets"]]
        assert mounted == ["gateway-htpasswd", "bert-logins", "gateway-tls"], target
        assert "bert-logins" in document["secrets"], target


def test_a_client_group_shares_one_login_and_one_mount(
        vision: Stack, main_document: Render) -> None:
    stack = _with_logins(vision, bert="team-a", churn="team-a")
    middlewares = gateway.dynamic_config(stack)["http"]["middlewares"]
    logins = {name: m["basicAuth"]["usersFile"] for name, m in middlewares.items()
              if "basicAuth" in m}
    assert logins == {"auth": "/run/secrets/gateway-htpasswd",
                      "auth-bert": "/run/secrets/team-a"}
    assert _chain(stack, "bert")[0] == _chain(stack, "churn")[0] == "auth-bert@file"
    assert _chain(stack, "resnet")[0] == "auth@file"
    mounted = [s["source"] for s in main_document(stack, "swarm")["services"]["gateway"]["secrets"]]
    assert mounted == ["gateway-htpasswd", "team-a", "gateway-tls"]
    # A route that names the stack's own secret is in the stack's group.
    same = _with_logins(vision, bert="gateway-htpasswd")
    assert "auth-bert" not in gateway.dynamic_config(same)["http"]["middlewares"]
    assert _chain(same, "bert")[0] == "auth@file"


def test_a_route_login_without_a_stack_login_leaves_the_others_open(vision: Stack) -> None:
    open_stack = vision.model_copy(update={"gateway": vision.gateway.model_copy(
        update={"auth": None})})
    stack = _with_logins(open_stack, churn="gateway-htpasswd")
    middlewares = gateway.dynamic_config(stack)["http"]["middlewares"]
    assert "auth" not in middlewares and "auth-churn" in middlewares
    assert _chain(stack, "churn")[0] == "auth-churn@file"
    assert _chain(stack, "bert")[0] == "strip-bert@file"
    assert gateway.gateway_service(stack, "swarm", True).secrets == (
        "gateway-htpasswd", "gateway-tls")


def test_predictions_are_retried_after_a_502_unless_a_model_opts_out(
        vision: Stack, main_document: Render) -> None:
    retry = gateway.dynamic_config(vision)["http"]["middlewares"]["retry"]["retry"]
    assert retry["status"] == ["502", "503"] and retry["retryNonIdempotentMethod"] is True
    assert "retry-unsent" not in gateway.dynamic_config(vision)["http"]["middlewares"]

    churn = next(m for m in vision.models if m.name == "churn")
    models = tuple(m.model_copy(update={"idempotent": False}) if m is churn else m
                   for m in vision.models)
    opted = vision.model_copy(update={"models": models})
    unsent = gateway.dynamic_config(opted)["http"]["middlewares"]["retry-unsent"]["retry"]
    assert set(unsent) == {"attempts", "initialInterval"}  # network errors only
    for target in ("swarm", "compose"):
        services = main_document(opted, target)["services"]
        labels = [s.get("deploy", {}).get("labels") or s.get("labels") or {}
                  for s in services.values()]
        chains = {k: v for each in labels for k, v in each.items()
                  if k.endswith(".middlewares") and ".routers." in k}
        assert chains["traefik.http.routers.vision-churn.middlewares"].endswith(
            "retry-unsent@file"), chains
        assert all(v.endswith(",retry@file") for k, v in chains.items() if "churn" not in k)


def test_every_routed_runtime_is_health_checked_on_both_targets(
        vision: Stack, main_document: Render) -> None:
    for target in ("swarm", "compose"):
        services = main_document(vision, target)["services"]
        for model in vision.models:
            service = services[f"model-{model.name}"]
            labels = service.get("labels") or service["deploy"]["labels"]
            prefix = f"traefik.http.services.vision-{model.name}.loadbalancer.healthcheck"
            assert labels[f"{prefix}.interval"] == "1s", (target, model.name)
            assert labels[f"{prefix}.path"].startswith("/"), (target, model.name)
            passive = prefix.replace(".healthcheck", ".passivehealthcheck")
            assert labels[f"{passive}.maxfailedattempts"] == "2", (target, model.name)


def test_dashboard_is_published_only_when_asked(vision: Stack, main_document: Render) -> None:
    closed = main_document(vision, "swarm")["services"]["gateway"]["ports"]
    assert [p["target"] for p in closed] == [80, 443]
    opened = vision.model_copy(update={"gateway": vision.gateway.model_copy(
        update={"dashboard": True})})
    ports = main_document(opened, "swarm")["services"]["gateway"]["ports"]
    assert [p["target"] for p in ports] == [80, 443, 8080]
    router = gateway.dynamic_config(opened)["http"]["routers"]["dashboard"]
    assert router["service"] == "api@internal" and router["middlewares"] == ["auth"]


def test_mlflow_is_proxied_with_allowed_hosts_and_checksum_settings(
    vision: Stack, main_document: Render
) -> None:
    mlflow = main_document(vision, "swarm")["services"]["mlflow"]
    env = mlflow["environment"]
    assert "mlflow" in env["SWARMAI_ALLOWED_HOSTS"].split(",")
    assert env["AWS_REQUEST_CHECKSUM_CALCULATION"] == "when_required"
    assert env["AWS_RESPONSE_CHECKSUM_VALIDATION"] == "when_required"
    assert env["SWARMAI_BACKEND_STORE_URI"] == "postgresql+psycopg2://mlflow@postgres:5432/mlflow"
    script = render_bundle(vision, "swarm").files["registry/mlflow-entrypoint.sh"]
    assert '--artifacts-destination "s3://${SWARMAI_BUCKET}/artifacts"' in script
    assert "--allowed-hosts" in script and "--default-artifact-root" not in script
    # Only MLflow holds S3 settings: model servers need the tracking URL alone,
    # the registry proxy's (which MLflow must accept as a Host).
    churn = main_document(vision, "swarm")["services"]["model-churn"]["environment"]
    assert not any(k.startswith(("AWS_", "MLFLOW_S3")) for k in churn)
    assert churn["MLFLOW_TRACKING_URI"] == "http://registry-proxy:5000"
    assert "registry-proxy:*" in env["SWARMAI_ALLOWED_HOSTS"].split(",")


def test_tfserving_reads_a_synced_volume_with_rendered_configs(
    vision: Stack, main_document: Render
) -> None:
    services = main_document(vision, "swarm")["services"]
    bert = services["model-bert"]
    assert "--model_config_file=/etc/swarmai/bert/models.config" in bert["command"]
    assert "--monitoring_config_file=/etc/swarmai/bert/monitoring.config" in bert["command"]
    # nocopy: the image's own /models (root-owned) must not seed the volume
    # model-sync writes.
    assert {"type": "volume", "source": "store-bert", "target": "/models",
            "read_only": True, "volume": {"nocopy": True}} in bert["volumes"]
    assert bert["healthcheck"]["test"][:2] == ["CMD", "bash"]
    assert "AVAILABLE" in bert["healthcheck"]["test"][-1]
    sync = services["sync-bert"]
    assert sync["environment"]["SWARMAI_LAYOUT"] == "tfserving"
    assert sync["deploy"]["mode"] == "global"
    assert sync["deploy"]["placement"]["constraints"] == ["node.hostname == gpu-a"]
    config = runtimes.tfserving_model_config(vision.models[1])
    assert "base_path: '/models/bert'" in config


def test_torchserve_properties_bind_all_and_carry_batching(vision: Stack) -> None:
    props = runtimes.torchserve_properties(vision.models[0])
    assert "inference_address=http://0.0.0.0:8080" in props
    assert "management_address=http://127.0.0.1:8081" in props
    assert '"batchSize":8' in props and '"maxBatchDelay":10' in props
    assert "disable_token_authorization=true" in props
    assert "enable_model_api=false" in props


def test_fastapi_server_gets_model_uri_and_batching(vision: Stack, main_document: Render) -> None:
    env = main_document(vision, "swarm")["services"]["model-churn"]["environment"]
    assert env["MODEL_URI"] == "models:/churn@production"
    assert env["SWARMAI_MAX_BATCH_SIZE"] == "32"
    assert env["SWARMAI_MAX_DELAY_MS"] == "5"


def test_image_overrides_replace_pinned_defaults(main_document: Render) -> None:
    cpu = load_stack(REPO / "stacks/cpu.yaml")
    services = main_document(cpu, "swarm")["services"]
    assert services["gateway"]["image"] == "registry.local:5000/traefik:v3.7.15"
    assert services["model-sentiment"]["image"] == "tensorflow/serving:2.18.0"
    assert all(":" in s["image"] and not s["image"].endswith(":latest")
               for s in services.values())


def test_dollar_signs_survive_compose_interpolation(
    write_stack: Callable[..., Path],
) -> None:
    path = write_stack("""
        version: 1
        name: dollar
        models: [{name: a, runtime: fastapi, model: "models:/a@prod"}]
        images: {fastapi: "registry.local/server:v1"}
    """)
    stack = load_stack(path)
    bundle = render_bundle(stack, "compose")
    # The TorchServe/TF commands contain no '$' here; the scripts do, but they
    # are files, not interpolated.  The escaping itself:
    from swarmai.render.common import escape_interpolation

    assert escape_interpolation({"a": ["x$y"]}) == {"a": ["x$$y"]}
    assert yaml.safe_load(bundle.files["compose.yml"])["name"] == "dollar"


def test_nodes_config_advertises_each_device_once(vision: Stack) -> None:
    configs = {c.hostname: c for c in node_configs(vision)}
    assert configs["gpu-a"].daemon_json["node-generic-resources"] == [
        "swarmai-gpu-gpu-a-0=1", "swarmai-gpu-gpu-a-1=1"]
    assert configs["gpu-b"].daemon_json["default-runtime"] == "nvidia"
    assert 'swarm-resource = ""' in configs["gpu-a"].nvidia_toml
