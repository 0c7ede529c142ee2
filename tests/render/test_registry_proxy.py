"""The registry proxy: what it lets through to MLflow, and where it sits."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from swarmai.render import render_bundle
from swarmai.render.registry_proxy import registry_proxy_config
from swarmai.spec import load_stack

REPO = Path(__file__).resolve().parents[2]


def _allowed_paths() -> re.Pattern[str]:
    """The config's own path rule (HAProxy's PCRE; this one is plain enough for ``re``)."""
    line = next(line for line in registry_proxy_config().splitlines()
                if line.strip().startswith("acl allowed path -m reg "))
    return re.compile(line.split("-m reg ", 1)[1].strip())


@pytest.mark.parametrize("path", [
    "/health", "/version",
    "/api/2.0/mlflow/registered-models/alias",
    "/api/2.0/mlflow/model-versions/get-download-uri",
    "/ajax-api/2.0/mlflow/registered-models/get",
    "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model/MLmodel",
])
def test_reads_of_mlflow_pass(path: str) -> None:
    assert _allowed_paths().match(path)


@pytest.mark.parametrize("path", [
    "/", "/api/2.0/mlflow/../../admin", "/api/2.0/mlflow/.hidden",
    "/api/2.0/mlflow/registered-models%2Fcreate", "/graphql", "/api/3.0/mlflow/traces",
    "/static-files/index.html",
])
def test_other_paths_are_refused(path: str) -> None:
    assert not _allowed_paths().match(path)


def test_only_get_and_head_pass() -> None:
    config = registry_proxy_config()
    assert "acl read method GET HEAD" in config
    assert "http-request deny deny_status 403 unless read allowed" in config


def test_model_servers_reach_mlflow_only_through_the_proxy() -> None:
    stack = load_stack(REPO / "stacks" / "vision.yaml", "swarm")
    bundle = render_bundle(stack, "swarm")
    services = yaml.safe_load(bundle.files[bundle.main])["services"]
    assert services["mlflow"]["networks"] == ["registry"]
    assert services["registry-proxy"]["networks"] == ["models", "registry"]
    for name, service in services.items():
        if name.startswith(("model-", "sync-")):
            assert "registry" not in service["networks"], name
            tracking = service["environment"].get("MLFLOW_TRACKING_URI")
            assert tracking in (None, "http://registry-proxy:5000"), name
    assert services["sync-bert"]["environment"]["MLFLOW_TRACKING_URI"] == (
        "http://registry-proxy:5000")
    assert bundle.files["registry/registry-proxy.cfg"] == registry_proxy_config()
