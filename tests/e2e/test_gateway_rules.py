"""The gateway's login and each route's rules (`models[].gateway`) at the real Traefik,
on Compose.

Four copies of the scorer app (tests/e2e/apps/scorer), built FROM swarmai's
server image, behind one gateway with `gateway.auth`: `open` has no rules;
`guarded` has a rate limit and a body limit; `fenced` allows only an address
range this host never has; `keyed` has its own login (`gateway.auth` of the
route). Without the login, or with a wrong password, a client gets 401; with
the login swarmai generated ({SHA}, from the private credentials file `up`
wrote) 200, and on `keyed` only with that route's own login. Past the rate a client gets 429, a body
above the limit 413, a stranger 403, and the same requests on `open` are
answered by the app. The engine proxy is the only container with the Docker
socket.  All of it over HTTPS with the certificate swarmai's local CA issued
(the default `gateway.tls`); plain HTTP redirects, and `secrets rotate
gateway-tls` makes the gateway present a new certificate from the same CA.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from lifecycle import (
    HTTPS_OFFSET,
    assert_redirects_to_https,
    engine_snapshot,
    https_url,
    swarmai,
    wait_until,
)

from swarmai import engine as docker
from swarmai import tlsca
from swarmai.engine import Engine

pytestmark = pytest.mark.e2e

NAME = "e2erules"
PORT = 18770
APP = Path(__file__).resolve().parent / "apps" / "scorer"
IMAGE = f"{NAME}/scorer:a"
RATE, BURST = 2, 4
LOGIN: dict[str, str] = {}  # the generated login, once `up` has written it
KEYED: dict[str, str] = {}  # the /keyed route's own generated login


def stack_text() -> str:
    app = f'app: {{image: "{IMAGE}", port: 8000, health_path: /healthz, ready_path: /ready}}'
    return f"""\
version: 1
name: {NAME}
gateway:
  port: {PORT}
  https_port: {PORT + HTTPS_OFFSET}
  auth: {{basic_users_secret: {NAME}-logins}}
storage: {{backend: seaweedfs, bucket: models, credentials_secret: {NAME}-s3}}
models:
  - name: open
    runtime: app
    route: /open
    {app}
  - name: guarded
    runtime: app
    route: /guarded
    {app}
    gateway:
      rate_limit: {{average: {RATE}, burst: {BURST}}}
      max_body_mb: 1
  - name: fenced
    runtime: app
    route: /fenced
    {app}
    gateway: {{allow_ips: [192.0.2.0/24]}}
  - name: keyed
    runtime: app
    route: /keyed
    {app}
    gateway: {{auth: {{basic_users_secret: {NAME}-keyed-logins}}}}
"""


def _ours() -> dict[str, set[str]]:
    return {kind: {n for n in names if NAME in n} for kind, names in engine_snapshot().items()}


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory,
             offline_images: dict[str, str]) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("rules")
    stack = directory / f"{NAME}.yaml"
    stack.write_text(stack_text())
    state = ["--state-dir", str(directory / "state")]
    swarmai("down", str(stack), "--volumes", *state)  # a previous run's leftovers, if any
    before = _ours()
    engine = Engine.from_env()
    try:
        docker.build_image(engine, APP, tag=IMAGE,
                           build_args={"BASE": offline_images["fastapi"], "VERSION": "a"},
                           labels={"swarmai.e2e": NAME}, progress=lambda _line: None,
                           what=f"building the scorer app ({IMAGE})")
        started = swarmai("up", str(stack), "--offline", *state)
        assert started.returncode == 0, started.stdout + started.stderr
        # The deploy's own route check counts the allow-list's 403 as a route that answers.
        assert "HTTP 403 (/fenced allows only 192.0.2.0/24)" in started.stderr, started.stderr
        credentials = directory / "state" / f"{NAME}-logins.credentials"
        user, password = credentials.read_text().strip().split(":", 1)
        LOGIN.update(user=user, password=password)
        keyed = directory / "state" / f"{NAME}-keyed-logins.credentials"
        user, password = keyed.read_text().strip().split(":", 1)
        KEYED.update(user=user, password=password)
        yield stack
    finally:
        try:
            stopped = swarmai("down", str(stack), "--volumes", *state)
            assert stopped.returncode == 0, stopped.stdout + stopped.stderr
            wait_until(lambda: _ours() == before, 30, "the engine as found")
        finally:
            if docker.image_exists(engine, IMAGE):
                engine.api.remove_image(IMAGE, force=True)


def _post(route: str, body: bytes, login: tuple[str, str] | None = None) -> int:
    """POST to ``route`` with the generated login (or ``login``) and the status it gets,
    over HTTPS verified against swarmai's local CA.

    curl, not urllib: for a large body it asks `Expect: 100-continue`, so a gateway
    that refuses the body from its headers (413) is heard, not cut off mid-upload."""
    user, password = login or (LOGIN["user"], LOGIN["password"])
    command = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30",
               "--cacert", str(tlsca.ca_dir() / tlsca.CA_CERT),
               "-H", "Content-Type: application/json", "--data-binary", "@-"]
    if user:
        command += ["-u", f"{user}:{password}"]
    done = subprocess.run([*command, https_url(PORT, f"{route}/predict")], input=body,
                          capture_output=True, check=True, timeout=60)
    return int(done.stdout)


def _json_of_size(size: int) -> bytes:
    return json.dumps({"pad": "x" * size}).encode()


def test_the_gateway_serves_https_from_the_local_ca_and_redirects_plain_http(
        deployed: Path) -> None:
    assert _post("/open", b"{}") == 200  # verified against swarmai's local CA
    assert_redirects_to_https(PORT, "/open/predict")
    # Verification is real: a client that trusts only the system's CAs refuses it.
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(https_url(PORT, "/open/predict"), timeout=10,
                               context=ssl.create_default_context())


def test_without_the_login_or_with_a_wrong_one_a_client_gets_401(deployed: Path) -> None:
    assert _post("/open", b"{}", login=("", "")) == 401
    assert _post("/open", b"{}", login=(LOGIN["user"], LOGIN["password"] + "x")) == 401
    assert _post("/open", b"{}", login=("someone", LOGIN["password"])) == 401
    assert _post("/open", b"{}") == 200
    # swarmai's generated login: 32 random characters, in htpasswd's fast {SHA} form.
    assert len(LOGIN["password"]) == 32


def test_a_route_with_its_own_login_takes_that_login_and_no_other(deployed: Path) -> None:
    keyed = (KEYED["user"], KEYED["password"])
    assert _post("/keyed", b"{}") == 401  # the stack's login
    assert _post("/keyed", b"{}", login=keyed) == 200
    assert _post("/keyed", b"{}", login=("", "")) == 401
    # The route's login opens no other route.
    assert _post("/open", b"{}", login=keyed) == 401


def test_past_the_rate_a_client_gets_429_and_the_open_route_does_not(deployed: Path) -> None:
    time.sleep(2)  # a full bucket: earlier requests have drained
    guarded = [_post("/guarded", b"{}") for _ in range(4 * BURST)]
    assert guarded[:BURST] == [200] * BURST, guarded
    assert 429 in guarded, guarded
    assert set(guarded) == {200, 429}, guarded
    assert {_post("/open", b"{}") for _ in range(4 * BURST)} == {200}
    # The bucket refills at the average rate.
    time.sleep(BURST / RATE + 1)
    assert _post("/guarded", b"{}") == 200


def test_a_body_above_the_limit_is_413_at_the_gateway(deployed: Path) -> None:
    time.sleep(BURST / RATE + 1)
    large, small = _json_of_size(2 * 1024 * 1024), _json_of_size(512 * 1024)
    assert _post("/guarded", large) == 413
    assert _post("/guarded", small) == 200
    assert _post("/open", large) == 200


def test_an_address_outside_the_allow_list_gets_403(deployed: Path) -> None:
    assert _post("/fenced", b"{}") == 403
    assert _post("/open", b"{}") == 200


def _served_certificate() -> bytes:
    """The certificate the gateway presents, verified against swarmai's local CA."""
    context = ssl.create_default_context(cafile=str(tlsca.ca_dir() / tlsca.CA_CERT))
    with socket.create_connection(("127.0.0.1", PORT + HTTPS_OFFSET), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_rotating_the_certificate_serves_a_new_one_from_the_same_ca(deployed: Path) -> None:
    before = _served_certificate()
    state = ["--state-dir", str(deployed.parent / "state")]
    rotated = swarmai("secrets", "rotate", str(deployed), "gateway-tls", "-t", "compose", *state)
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    assert "gateway" in rotated.stdout
    after = wait_until(lambda: (c := _served_certificate()) != before and c, 30,
                       "the gateway to present the new certificate")
    assert after != before
    assert _post("/open", b"{}") == 200


def test_only_the_engine_proxy_holds_the_docker_socket(deployed: Path) -> None:
    api = Engine.from_env().api
    holders = set()
    for container in api.containers(filters={"label": f"com.docker.compose.project={NAME}"}):
        mounts = api.inspect_container(container["Id"])["Mounts"]
        if any(m.get("Source") == "/var/run/docker.sock" for m in mounts):
            holders.add(container["Labels"]["com.docker.compose.service"])
    assert holders == {"engine-proxy"}
