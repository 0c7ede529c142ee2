"""Call each model's route through the gateway: the last step of a deploy.

A converged stack can still route nowhere (a wrong network label, a missing
port label); only a request through Traefik proves the route.  Each runtime is
asked its own "model loaded" question under the model's route.
"""

from __future__ import annotations

import http.client
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from swarmai import tlsca
from swarmai.errors import OperationError
from swarmai.render.app_runtime import app_block
from swarmai.spec import Model, Stack

# Traefik's Swarm provider polls every 2 s (see render/gateway.py); allow a few rounds.
ROUTE_WAIT_S = 30.0


@dataclass(frozen=True)
class RouteCheck:
    model: str
    url: str
    status: int
    version: str | None  # X-Model-Version, when the runtime sends it


def probe_path(model: Model) -> str:
    """The path under the model's route that answers 200 once the model is loaded."""
    if model.runtime == "app":
        return app_block(model).readiness_path
    if model.runtime == "fastapi":
        return "/readyz"
    if model.runtime == "tfserving":
        return f"/v1/models/{model.name}"
    return "/ping"


def public_url(stack: Stack, model: Model, host: str) -> str:
    """``model``'s route as a client calls it: HTTPS unless gateway.tls.mode is off."""
    gateway = stack.gateway
    scheme, port, default = (("http", gateway.port, 80) if gateway.tls.mode == "off"
                             else ("https", gateway.https_port, 443))
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    return f"{scheme}://{host}{'' if port == default else f':{port}'}{model.public_route}"


def open_route(stack: Stack, url: str | urllib.request.Request,
               timeout: float) -> http.client.HTTPResponse:
    """urlopen ``url`` (a public_url) trusting the CA that signed the gateway's certificate."""
    response: http.client.HTTPResponse = urllib.request.urlopen(
        url, timeout=timeout, context=client_context(stack))
    return response


def client_context(stack: Stack) -> ssl.SSLContext | None:
    """How swarmai's own requests verify the gateway: against swarmai's local CA
    (tls.mode local), the system's CAs (a certificate of yours, ACME), or not at all
    (plain HTTP)."""
    mode = stack.gateway.tls.mode
    if mode == "off":
        return None
    if mode != "local":
        return _verifying(None, 0)
    cafile = tlsca.ca_dir() / tlsca.CA_CERT
    if not cafile.exists():
        raise OperationError(
            f"the gateway's certificate comes from swarmai's local CA, and there is none at "
            f"{cafile}: run this where the stack was deployed, or set {tlsca.CA_DIR_ENV} to "
            "the folder of the CA that issued it")
    return _verifying(str(cafile), cafile.stat().st_mtime_ns)


@cache
def _verifying(cafile: str | None, version: int) -> ssl.SSLContext:
    """One context per CA file (None: the system's CAs) and version of it.

    Making one reads and parses the CA file (the system's: every CA on the
    machine), and the route check and a promotion's version check poll; a CA
    file replaced since has another modification time, so another context.
    """
    del version  # a part of the cache key only
    return ssl.create_default_context(cafile=cafile)


def prediction_url(stack: Stack, model: Model, host: str) -> str:
    """Where to POST a prediction for ``model`` through the gateway (an app: its route,
    under which the app's own paths are)."""
    base = public_url(stack, model, host)
    if model.runtime == "app":
        return base
    if model.runtime == "fastapi":
        return f"{base}/v1/predict"
    if model.runtime == "tfserving":
        return f"{base}/v1/models/{model.name}:predict"
    return f"{base}/predictions/{model.name}"


def gateway_refusals(stack: Stack, model: Model) -> dict[int, str]:
    """The answers the gateway itself gives swarmai's own requests on ``model``'s route,
    by status, with why: a login it does not have (401), an address outside the
    route's ``allow_ips`` (403).  Such an answer proves the route; it cannot show
    which version serves."""
    refusals = {}
    if (login := stack.login_for(model)) is not None:
        refusals[401] = f"the gateway requires basic auth ({login.basic_users_secret})"
    if model.gateway is not None and model.gateway.allow_ips is not None:
        refusals[403] = f"{model.public_route} allows only {', '.join(model.gateway.allow_ips)}"
    return refusals


def check_routes(stack: Stack, host: str, *, progress: Callable[[str], None],
                 wait_s: float = ROUTE_WAIT_S) -> list[RouteCheck]:
    """GET every model's probe through the gateway until it answers 200, or what the
    gateway answers without reaching the model (gateway_refusals)."""
    checks = []
    for model in stack.models:
        url = public_url(stack, model, host) + probe_path(model)
        refusals = gateway_refusals(stack, model)
        check = _wait_for(stack, model, url, wait_s, accepted=set(refusals))
        progress(f"  route {model.public_route} -> {model.name}: HTTP {check.status}"
                 + (f", version {check.version}" if check.version else "")
                 + (f" ({refusals[check.status]})" if check.status in refusals else ""))
        checks.append(check)
    return checks


def _wait_for(stack: Stack, model: Model, url: str, wait_s: float, *,
              accepted: set[int]) -> RouteCheck:
    deadline = time.monotonic() + wait_s
    last = "no answer"
    while True:
        try:
            with open_route(stack, url, timeout=5) as response:
                return RouteCheck(model.name, url, response.status,
                                  response.headers.get("X-Model-Version"))
        except urllib.error.HTTPError as error:
            if error.code in accepted:
                return RouteCheck(model.name, url, error.code, None)
            last = f"HTTP {error.code}"
        except (urllib.error.URLError, OSError) as error:
            last = str(getattr(error, "reason", error))
        if time.monotonic() > deadline:
            raise OperationError(
                f"model {model.name} is healthy but its route does not answer through the "
                f"gateway: GET {url} -> {last} after {wait_s:.0f} s"
            )
        time.sleep(0.5)
