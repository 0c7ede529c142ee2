"""The engine proxy's allow-list (gateway/engine-proxy/haproxy.cfg), read as HAProxy reads it.

The e2e tests show Traefik routing through the proxy and a container create
refused from inside the gateway; these pin the rule itself, path by path.
"""

from __future__ import annotations

import re

import pytest

from swarmai import assets


def _rule() -> re.Pattern[str]:
    config = (assets.folder("gateway") / "engine-proxy" / "haproxy.cfg").read_text()
    found = re.search(r"^\s*acl allowed path -m reg (\S+)$", config, re.MULTILINE)
    assert found, "haproxy.cfg has no `acl allowed path -m reg` rule"
    return re.compile(found.group(1))


@pytest.mark.parametrize("path", [
    "/_ping", "/version", "/v1.45/version", "/v1.45/services", "/v1.45/tasks",
    "/v1.45/networks", "/v1.45/nodes", "/v1.45/events", "/v1.45/containers/json",
    "/v1.45/containers/0123abcd/json", "/v1.24/containers/my_app.1-x/json",
    "/v1.45/nodes/xpq9k6tu6bnv2vk84ix7r7gwc", "/v1.45/services/abc", "/v1.45/networks/abc",
])
def test_what_traefiks_providers_read_passes(path: str) -> None:
    assert _rule().search(path)


@pytest.mark.parametrize("path", [
    "/v1.45/containers/create", "/v1.45/containers/abc/exec", "/v1.45/exec/abc/start",
    "/v1.45/services/abc/update", "/v1.45/secrets",
    "/v1.45/configs", "/v1.45/info", "/v1.45/images/json", "/v1.45/volumes",
    "/v1.45/containers/..%2F..%2Fcreate", "/v1.45/containers/abc/json/../../create",
    "/v1.45/containers/abc/archive", "/swarm", "/v1.45/plugins", "/v1.45/nodes/abc/update",
    "/v1.45/services/abc/logs", "/v1.45/tasks/abc/logs", "/v1.45/networks/abc/connect",
    "/v1.45/containers/../json", "/v1.45/containers/./json", "/v1.45/nodes/..",
    "/v1.45/services/.hidden",
])
def test_anything_else_is_refused(path: str) -> None:
    assert not _rule().search(path)


def test_only_reads_pass() -> None:
    config = (assets.folder("gateway") / "engine-proxy" / "haproxy.cfg").read_text()
    assert "acl read method GET HEAD" in config
    assert "http-request deny deny_status 403 unless read allowed" in config
