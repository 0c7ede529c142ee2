"""Traefik v3: static config, file-provider dynamic config, and routing labels.

Routers and load-balanced services come from labels on the model services,
because only the Swarm/Docker provider knows the task addresses.  Middlewares
(strip prefix, basic auth, and those of gateway/middlewares.yml, such as retry)
live in the file provider so labels only reference them, and so a later canary
can add weighted services beside them.  The static configuration is
gateway/traefik-defaults.yml with the stack's values filled in.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import yaml

from swarmai import assets
from swarmai.errors import OperationError
from swarmai.render import gateway_tls, naming
from swarmai.render.plan import Healthcheck, Mount, Port, RenderedFile, ServicePlan
from swarmai.render.runtimes import DEREGISTER_S, serving_port
from swarmai.spec import Model, Stack, Target, image_for

STATIC_PATH = "gateway/traefik.yml"
# The Compose gateway's active health check of model containers: one probe a
# second drops a draining server well inside its deregistration window
# (runtimes.DEREGISTER_S); a generous timeout keeps a busy but healthy server in.
READY_PROBE_INTERVAL_S = 1
READY_PROBE_TIMEOUT_S = 3
# The passive check between probes: a replica whose connections fail (a crash
# leaves an address that never answers) or that answers 5xx twice in a row is
# out at once; the next successful probe brings it back.
PASSIVE_FAILED_ATTEMPTS = 2
PASSIVE_WINDOW_S = 5
DYNAMIC_PATH = "gateway/dynamic/routes.yml"
DYNAMIC_DIR = "/etc/traefik/dynamic"
# The file provider's directory is a volume, so files can be added while
# Traefik runs (canary weights): a Swarm config cannot change without
# recreating the gateway.  routes.yml is still a config, mounted inside it.
DYNAMIC_VOLUME = "gateway-dynamic"
# Above any rule-length priority Traefik gives the label routers.
CANARY_PRIORITY = 100_000
# Where Traefik's provider reads the engine: the proxy, never the socket.
ENGINE_ENDPOINT = f"tcp://{naming.ENGINE_PROXY}:{naming.ENGINE_PROXY_PORT}"

# The gateway's own assets (gateway/ in a checkout): the static configuration's
# defaults, and the middlewares every model route goes through.
STATIC_DEFAULTS = "traefik-defaults.yml"
MIDDLEWARES = "middlewares.yml"
# gateway/middlewares.yml's retry, and the variant a model with `idempotent:
# false` gets instead: only requests no byte of which reached a server are
# retried (Traefik's network-error retry), never a POST answered by a 502.
RETRY = "retry"
RETRY_UNSENT = "retry-unsent"
# The basicAuth middleware of gateway.auth (a route's own login: _auth_name).
STACK_LOGIN = "auth"
_UNSENT_KEYS = ("attempts", "initialInterval")


def static_config(stack: Stack, target: Target) -> dict[str, Any]:
    """Traefik's static configuration (traefik.yml) as data: the defaults, filled in."""
    config = _asset(STATIC_DEFAULTS)
    provider = "swarm" if target == "swarm" else "docker"
    _drop(config, "providers", "docker" if provider == "swarm" else "swarm")
    _fill(config, "entryPoints.web.address", f":{naming.GATEWAY_WEB_PORT}")
    _static_tls(config, stack)
    _fill(config, "entryPoints.traefik.address", f":{naming.GATEWAY_ADMIN_PORT}")
    _fill(config, f"providers.{provider}.endpoint", ENGINE_ENDPOINT)
    _fill(config, f"providers.{provider}.network",
          naming.network_name(stack, naming.MODELS_NET, target))
    _fill(config, f"providers.{provider}.constraints",
          f"Label(`swarmai.stack`,`{stack.name}`)")
    _fill(config, "providers.file.directory", DYNAMIC_DIR)
    _fill(config, "api.dashboard", stack.gateway.dashboard)
    if provider == "swarm":
        _require_fast_refresh(config["providers"]["swarm"])
    return config


def _static_tls(config: dict[str, Any], stack: Stack) -> None:
    """The HTTPS entry point, plain HTTP redirected to it, and ACME's resolver."""
    tls = stack.gateway.tls
    if tls.mode == "off":
        _drop(config, "entryPoints", gateway_tls.WEBSECURE)
        _drop(config["entryPoints"][gateway_tls.WEB], "http", "redirections")
        if not config["entryPoints"][gateway_tls.WEB]["http"]:
            del config["entryPoints"][gateway_tls.WEB]["http"]
        return
    _fill(config, f"entryPoints.{gateway_tls.WEBSECURE}.address", f":{naming.GATEWAY_TLS_PORT}")
    # The published port, which the client sees: the entry point's own is inside.
    _fill(config, f"entryPoints.{gateway_tls.WEB}.http.redirections.entryPoint.to",
          f":{stack.gateway.https_port}")
    if tls.mode == "acme":
        config["certificatesResolvers"] = gateway_tls.acme_resolvers(stack)


def _require_fast_refresh(swarm_provider: dict[str, Any]) -> None:
    """Refuse a Swarm poll slower than the servers' deregistration window.

    A replaced FastAPI task keeps answering for DEREGISTER_S after SIGTERM; the
    gateway must have polled Swarm and dropped it by then, or requests fail.
    """
    refresh = swarm_provider.get("refreshSeconds", 15)  # Traefik's default
    if not isinstance(refresh, int | float) or not 0 < refresh < DEREGISTER_S:
        raise OperationError(
            f"{assets.path('gateway', STATIC_DEFAULTS)}: providers.swarm.refreshSeconds is "
            f"{refresh!r}, and it must be a number of seconds below {DEREGISTER_S} (how long a "
            "replaced model server keeps answering), or rollouts fail requests: set it to 2"
        )


def route_middlewares() -> dict[str, Any]:
    """The middlewares of every route (gateway/middlewares.yml), by name, in chain order."""
    return _asset(MIDDLEWARES)


def dynamic_config(stack: Stack) -> dict[str, Any]:
    """The file provider's configuration: middlewares, and the dashboard router."""
    middlewares: dict[str, Any] = route_middlewares()
    for model in stack.models:
        for rules in _rule_middlewares(model):
            middlewares.update(rules)
        middlewares[_strip_name(model)] = {
            "stripPrefix": {"prefixes": [model.public_route]},
        }
    retry = middlewares.get(RETRY, {}).get("retry")
    if retry is not None and not all(model.idempotent for model in stack.models):
        middlewares[RETRY_UNSENT] = {"retry": {k: v for k, v in retry.items()
                                               if k in _UNSENT_KEYS}}
    for secret, name in _logins(stack).items():
        middlewares[name] = _basic_auth(secret)
    http: dict[str, Any] = {"middlewares": middlewares}
    if stack.gateway.dashboard:
        http["routers"] = {"dashboard": gateway_tls.with_tls(stack, {
            "rule": "PathPrefix(`/api`) || PathPrefix(`/dashboard`)",
            # The admin entry point also answers ping and metrics in plain HTTP,
            # on the stack's networks only: this router is its one TLS route.
            "entryPoints": ["traefik"],
            "service": "api@internal",
            "middlewares": [STACK_LOGIN] if stack.gateway.auth else [],
        })}
    config: dict[str, Any] = {"http": http}
    if (tls := gateway_tls.default_certificate(stack)) is not None:
        config["tls"] = tls
    return config


def canary_file(model: Model) -> str:
    """The file (in the dynamic volume) that holds ``model``'s canary weights."""
    return f"canary-{model.name}.yml"


def canary_config(stack: Stack, model: Model, percent: int, target: Target) -> dict[str, Any]:
    """A router that takes over ``model``'s route and splits it by weight.

    Weights cannot be expressed in labels, so this lives in the file provider:
    ``100 - percent`` to the model's own (label-defined) service, ``percent``
    to the canary service, reached by its in-stack DNS name.
    """
    router = naming.router_name(stack, model)
    provider = "swarm" if target == "swarm" else "docker"
    canary_url = f"http://{naming.canary_service(model)}:{serving_port(model)}"
    return {"http": {
        "routers": {f"{router}-canary": gateway_tls.with_tls(stack, {
            "rule": _rule(model),
            "priority": CANARY_PRIORITY,
            "entryPoints": [gateway_tls.public_entrypoint(stack)],
            "middlewares": [m.removesuffix("@file") for m in _chain(stack, model)],
            "service": f"{router}-weighted",
        })},
        "services": {
            f"{router}-weighted": {"weighted": {"services": [
                {"name": f"{router}@{provider}", "weight": 100 - percent},
                {"name": f"{router}-canary", "weight": percent},
            ]}},
            f"{router}-canary": {"loadBalancer": {"servers": [{"url": canary_url}]}},
        },
    }}


# Paths under a model's route the public router does not match (Traefik then
# answers 404): the runtimes' metrics (the FastAPI server's /metrics, TF
# Serving's /monitoring/prometheus/metrics on its REST port) and API
# descriptions.  They stay reachable on the stack's network.  One list for
# every runtime: rule length is Traefik's router priority, and a longer route
# must keep out-ranking a shorter one whatever the runtimes.
PRIVATE_PATHS = ("metrics", "docs", "redoc", "openapi.json", "monitoring")


def _rule(model: Model) -> str:
    """Exact segments (``/churn`` never catches ``/churn2``), less the private paths."""
    route = model.public_route
    names = "|".join(_literal(name) for name in PRIVATE_PATHS)
    # A separator or any percent-encoded character ends the name: Traefik
    # routes on a path that keeps %2F encoded, which the backend then decodes.
    private = f"^{_literal(route)}/({names})([/;%].*)?$"
    return f"(Path(`{route}`) || PathPrefix(`{route}/`)) && !PathRegexp(`{private}`)"


def _literal(text: str) -> str:
    """``text`` as a Go regexp literal: of the characters a route may hold, only `.` is special."""
    return text.replace(".", r"\.")


def _rule_middlewares(model: Model) -> tuple[dict[str, Any], dict[str, Any]]:
    """The middlewares of ``model.gateway``, by name: those before the login, those after.

    The address check and the rate limit come first, so that neither a stranger
    nor a flood costs a password check; the body limit after the login, since
    it buffers the body.
    """
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    rules = model.gateway
    if rules is None:
        return before, after
    if rules.allow_ips is not None:
        before[f"allow-{model.name}"] = {"ipAllowList": {"sourceRange": list(rules.allow_ips)}}
    if rules.rate_limit is not None:
        limit = rules.rate_limit
        before[f"ratelimit-{model.name}"] = {"rateLimit": {
            "average": limit.average, "period": "1s", "burst": limit.burst or limit.average}}
    if rules.max_body_mb is not None:
        after[f"body-{model.name}"] = {
            "buffering": {"maxRequestBodyBytes": rules.max_body_mb * 1024 * 1024}}
    return before, after


def _chain(stack: Stack, model: Model) -> list[str]:
    """A route's middlewares: address, rate, login, body, prefix, then gateway/middlewares.yml."""
    names = [RETRY_UNSENT if name == RETRY and not model.idempotent else name
             for name in _parsed(MIDDLEWARES)]
    before, after = _rule_middlewares(model)
    login = _login(stack, model)
    chain = [*before, *([login] if login else []), *after, _strip_name(model), *names]
    return [f"{name}@file" for name in chain]


def _logins(stack: Stack) -> dict[str, str]:
    """Each login secret -> its basicAuth middleware: the stack's (gateway.auth) is
    STACK_LOGIN; a route's own is named after the first model that names its secret,
    so a client group (models that share a secret) shares one middleware."""
    names: dict[str, str] = {}
    if stack.gateway.auth is not None:
        names[stack.gateway.auth.basic_users_secret] = STACK_LOGIN
    for model in stack.models:
        if model.gateway is not None and model.gateway.auth is not None:
            names.setdefault(model.gateway.auth.basic_users_secret, _auth_name(model))
    return names


def _login(stack: Stack, model: Model) -> str | None:
    """The basicAuth middleware of ``model``'s route (None: the route asks for no login)."""
    login = stack.login_for(model)
    return None if login is None else _logins(stack)[login.basic_users_secret]


def _auth_name(model: Model) -> str:
    return f"auth-{model.name}"


def _basic_auth(secret: str) -> dict[str, Any]:
    """A login checked against the htpasswd file of the Docker secret ``secret``."""
    return {"basicAuth": {"usersFile": f"{naming.SECRETS_DIR}/{secret}", "removeHeader": True}}


def router_labels(stack: Stack, model: Model, port: int, target: Target) -> dict[str, str]:
    """Labels that route ``model.public_route`` to ``port`` of the model's tasks."""
    router = naming.router_name(stack, model)
    provider = "swarm" if target == "swarm" else "docker"
    prefix = f"traefik.http.routers.{router}"
    return {
        "traefik.enable": "true",
        f"{prefix}.rule": _rule(model),
        f"{prefix}.entrypoints": gateway_tls.public_entrypoint(stack),
        **gateway_tls.tls_labels(stack, prefix),
        f"{prefix}.middlewares": ",".join(_chain(stack, model)),
        f"{prefix}.service": router,
        # Mandatory on Swarm: the provider gets no port information otherwise
        # and silently drops every router of the service.
        f"traefik.http.services.{router}.loadbalancer.server.port": str(port),
        f"traefik.{provider}.network": naming.network_name(stack, naming.MODELS_NET, target),
    }


def ready_check_labels(stack: Stack, model: Model, path: str) -> dict[str, str]:
    """Traefik's active health check of each of ``model``'s containers on ``path``.

    Traefik's Docker provider drops a container when it dies, not when it is
    asked to stop, and its Swarm provider only at its next poll (2 s).  Probed
    every second, a server that turns unready on SIGTERM (and keeps answering
    meanwhile) is out of routing before its socket closes, and one that
    crashed or hangs is out within a probe or its timeout, on either target;
    between probes, the passive check takes out one whose requests fail.
    """
    prefix = f"traefik.http.services.{naming.router_name(stack, model)}.loadbalancer.healthcheck"
    passive = prefix.replace(".healthcheck", ".passivehealthcheck")
    return {
        f"{prefix}.path": path,
        f"{prefix}.interval": f"{READY_PROBE_INTERVAL_S}s",
        f"{prefix}.timeout": f"{READY_PROBE_TIMEOUT_S}s",
        f"{passive}.maxfailedattempts": str(PASSIVE_FAILED_ATTEMPTS),
        f"{passive}.failurewindow": f"{PASSIVE_WINDOW_S}s",
    }


def gateway_service(stack: Stack, target: Target, host_ports: bool) -> ServicePlan:
    """Traefik itself: no Docker socket, admin port private by default.

    It reads services and containers through the engine proxy; on Swarm it
    stays on a manager beside it (the proxy's socket is a manager's).
    """
    gateway, tls = stack.gateway, stack.gateway.tls
    ports = [Port(gateway.port, naming.GATEWAY_WEB_PORT)]
    if tls.mode != "off":
        ports.append(Port(gateway.https_port, naming.GATEWAY_TLS_PORT))
    if gateway.dashboard:
        ports.append(Port(gateway.dashboard_port, naming.GATEWAY_ADMIN_PORT))
    secrets = tuple(stack.login_secrets())
    if tls.mode in ("local", "secret"):
        secrets += (tls.secret,)
    volumes = [Mount(DYNAMIC_VOLUME, DYNAMIC_DIR)]
    if tls.mode == "acme":
        volumes.append(Mount(gateway_tls.ACME_VOLUME, gateway_tls.ACME_DIR))
    return ServicePlan(
        name=naming.GATEWAY,
        image=image_for(stack.images, "traefik"),
        role="gateway",
        command=("traefik", "--configFile=/etc/traefik/traefik.yml"),
        networks=(naming.MODELS_NET, naming.ENGINE_NET),
        volumes=tuple(volumes),
        files=(
            RenderedFile("traefik-static", STATIC_PATH, "/etc/traefik/traefik.yml"),
            RenderedFile("traefik-routes", DYNAMIC_PATH, f"{DYNAMIC_DIR}/routes.yml"),
        ),
        secrets=secrets,
        healthcheck=Healthcheck(("CMD", "traefik", "healthcheck", "--ping"), start_period_s=10),
        ports=tuple(ports),
        manager_only=target == "swarm",
        depends_on=(naming.ENGINE_PROXY,),
        start_first=not host_ports,
        least_privilege=True,
        read_only_root=True,
        # Traefik spills request bodies it buffers (retry, body limits) above 1 MiB here.
        tmpfs=("/tmp",),
        labels={naming.ROOT_LABEL: "reads its certificate key and login files, which Compose "
                "mounts as root's only (0600); it holds no capability and its root file "
                "system is read-only"},
    )


def _strip_name(model: Model) -> str:
    return f"strip-{model.name}"


@cache
def _parsed(name: str) -> dict[str, Any]:
    text = assets.read_text("gateway", name)
    document = yaml.safe_load(text)
    if not isinstance(document, dict):
        raise OperationError(f"{assets.path('gateway', name)} must hold a YAML mapping")
    return document


def _asset(name: str) -> dict[str, Any]:
    """A fresh copy of the gateway asset ``name`` (parsed once; callers fill it in)."""
    return copy.deepcopy(_parsed(name))


def _fill(config: dict[str, Any], dotted: str, value: Any) -> None:
    """Set the value at ``dotted`` (``a.b.c``), a key the defaults file must have."""
    *parents, key = dotted.split(".")
    node: Any = config
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict) or key not in node:
        raise OperationError(
            f"{assets.path('gateway', STATIC_DEFAULTS)} has no {dotted}: swarmai fills it in "
            "for each stack, so it must stay there (as `~`)"
        )
    node[key] = value


def _drop(config: dict[str, Any], section: str, key: str) -> None:
    node = config.get(section)
    if isinstance(node, dict):
        node.pop(key, None)
