"""What deploy and up prepare before touching the engine: pure parts."""

from __future__ import annotations

import base64
import configparser
import hashlib
from pathlib import Path

import pytest
import yaml

from swarmai.lifecycle.routes import gateway_refusals, prediction_url, probe_path, public_url
from swarmai.lifecycle.secrets import SecretValue, fresh_secrets
from swarmai.lifecycle.steps import registry_only_file, state_directory
from swarmai.render import render_bundle
from swarmai.spec import GatewayAuth, RouteRules, Stack, load_stack

REPO = Path(__file__).resolve().parents[2]


def secret_values(stack: Stack) -> dict[str, SecretValue]:
    """A fresh value for every secret swarmai would generate for ``stack``."""
    return {name: fresh() for name, fresh in fresh_secrets(stack).items()}


def test_generated_secrets_have_the_formats_their_readers_expect() -> None:
    values = secret_values(load_stack(REPO / "stacks/vision.yaml"))
    creds = configparser.ConfigParser()
    creds.read_string(values["s3-creds"].content)
    assert len(creds["default"]["aws_secret_access_key"]) == 40
    assert values["mlflow-db-password"].content.isalnum()
    user, hashed = values["gateway-htpasswd"].content.strip().split(":", 1)
    assert user == "swarmai" and hashed.startswith("{SHA}")
    reveal = values["gateway-htpasswd"].reveal or ""
    shown_user, password = reveal.strip().split(":", 1)
    assert shown_user == user and len(password) == 32 and password.isalnum()
    # htpasswd's {SHA} form, as Traefik checks it: base64 of the password's SHA-1.
    digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    assert hashed == "{SHA}" + digest
    assert values["s3-creds"].content != secret_values(
        load_stack(REPO / "stacks/vision.yaml"))["s3-creds"].content


def test_each_route_login_is_generated_once_per_secret() -> None:
    vision = load_stack(REPO / "stacks/vision.yaml")
    keyed = RouteRules(auth=GatewayAuth(basic_users_secret="team-logins"))
    models = tuple(m.model_copy(update={"gateway": keyed}) for m in vision.models[:2])
    values = secret_values(vision.model_copy(update={"models": (*models, *vision.models[2:])}))
    logins = {name for name, value in values.items() if value.reveal is not None}
    assert logins == {"gateway-htpasswd", "team-logins"}
    assert values["team-logins"].content.startswith("swarmai:{SHA}")
    assert values["team-logins"].content != values["gateway-htpasswd"].content


def test_external_store_keys_are_never_invented() -> None:
    values = secret_values(load_stack(REPO / "stacks/cpu.yaml"))
    assert "s3-creds" not in values and "mlflow-db-password" in values


def test_state_directory_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    stack = load_stack(REPO / "stacks/dev.yaml")
    assert state_directory(stack, "compose") == tmp_path / "swarmai" / "dev-compose"
    assert state_directory(stack, "swarm", tmp_path / "x") == tmp_path / "x"


def test_registry_only_file_keeps_registry_definitions_identical(tmp_path: Path) -> None:
    from swarmai.lifecycle.steps import Prepared

    stack = load_stack(REPO / "stacks/vision.yaml")
    bundle = render_bundle(stack, "swarm", ipvs=False)
    prepared = Prepared(stack, "swarm", bundle, tmp_path)
    subset = yaml.safe_load(registry_only_file(prepared).read_text())
    full = yaml.safe_load(bundle.files["stack.yml"])
    assert sorted(subset["services"]) == ["mlflow", "postgres", "registry-proxy", "s3"]
    for name, service in subset["services"].items():
        assert service == full["services"][name]


def test_urls_under_each_runtime() -> None:
    stack = load_stack(REPO / "stacks/vision.yaml")
    resnet, bert, churn = stack.models
    assert prediction_url(stack, churn, "h") == "https://h/churn/v1/predict"
    assert prediction_url(stack, bert, "h") == "https://h/models/bert/v1/models/bert:predict"
    assert prediction_url(stack, resnet, "h") == "https://h/models/resnet/predictions/resnet"
    assert probe_path(bert) == "/v1/models/bert" and probe_path(resnet) == "/ping"
    dev = load_stack(REPO / "stacks/dev.yaml")
    assert public_url(dev, dev.models[0], "127.0.0.1") == "https://127.0.0.1:8443/models/iris"


def test_what_the_gateway_answers_for_itself_proves_a_route() -> None:
    vision = load_stack(REPO / "stacks/vision.yaml")
    fenced = vision.models[0].model_copy(update={"gateway": RouteRules(
        allow_ips=("192.0.2.0/24",))})
    assert gateway_refusals(vision, fenced) == {
        401: "the gateway requires basic auth (gateway-htpasswd)",
        403: f"{fenced.public_route} allows only 192.0.2.0/24"}
    dev = load_stack(REPO / "stacks/dev.yaml")
    assert gateway_refusals(dev, dev.models[0]) == {}
    # A route's own login: refused without it even where the stack has none.
    keyed = dev.models[0].model_copy(update={"gateway": RouteRules(
        auth=GatewayAuth(basic_users_secret="iris-logins"))})
    assert gateway_refusals(dev, keyed) == {
        401: "the gateway requires basic auth (iris-logins)"}


def test_a_value_is_made_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Making the certificate creates swarmai's local CA: not for a secret that exists.
    monkeypatch.setenv("SWARMAI_CA_DIR", str(tmp_path / "ca"))
    fresh = fresh_secrets(load_stack(REPO / "stacks/dev.yaml"))
    assert "gateway-tls" in fresh and not (tmp_path / "ca").exists()
    assert "BEGIN CERTIFICATE" in fresh["gateway-tls"]().content
    assert (tmp_path / "ca").is_dir()
