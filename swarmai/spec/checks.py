"""Cross-field rules of the stack spec.

Each check looks at a whole :class:`Stack` and yields every violation it finds,
so a user fixes a file in one pass instead of one error per run.  Only GPU rules
depend on the target: on Compose the devices are the one host's ids and
``gpus.node`` is ignored; on Swarm they are (node, device) pairs of ``nodes:``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from swarmai.spec.fields import IMAGE_REGISTRY, IMAGE_REGISTRY_KEY, Target
from swarmai.spec.findings import Finding, Loc
from swarmai.spec.images import DEFAULT_IMAGES
from swarmai.spec.models import Model, Stack
from swarmai.spec.settings import check_model_settings
from swarmai.spec.suggest import did_you_mean

__all__ = ["Finding", "Loc", "check_stack"]


def check_stack(stack: Stack, target: Target) -> list[Finding]:
    """Every cross-field problem of ``stack`` when deployed to ``target``."""
    findings: list[Finding] = []
    for check in (_unique_names, _routes, _runtime_blocks, _storage, _images, _gateway,
                  check_model_settings):
        findings.extend(check(stack))
    findings.extend(_gpu_devices(stack, target))
    findings.extend(_gpu_exclusivity(stack, target))
    return findings


def _unique_names(stack: Stack) -> Iterator[Finding]:
    first_seen: dict[str, int] = {}
    for index, model in enumerate(stack.models):
        if model.name in first_seen:
            yield Finding(
                ("models", index, "name"),
                f"model name {model.name!r} is already used by models[{first_seen[model.name]}]",
                "model names must be unique within a stack",
            )
        else:
            first_seen[model.name] = index


def _routes(stack: Stack) -> Iterator[Finding]:
    first_seen: dict[str, int] = {}
    for index, model in enumerate(stack.models):
        route = model.public_route
        loc: Loc = ("models", index, "route")
        if route in first_seen:
            yield Finding(
                loc,
                f"route {route!r} is already used by models[{first_seen[route]}]",
                "give each model its own route",
            )
        else:
            first_seen[route] = index


_CLEAR_TEXT_FIX = ("remove tls.mode: off (swarmai's local CA issues a certificate), or name "
                   "your certificate's secret with tls: {mode: secret, secret: NAME}")


def _gateway(stack: Stack) -> Iterator[Finding]:
    """Nothing of Traefik's own API published without a login, and no login in clear text."""
    gateway, tls = stack.gateway, stack.gateway.tls
    if gateway.dashboard and gateway.auth is None:
        yield Finding(
            ("gateway", "dashboard"),
            "the dashboard would publish Traefik's API and configuration to anyone "
            "who reaches gateway.dashboard_port: it needs gateway.auth",
            "set gateway.auth.basic_users_secret (swarmai generates the login), "
            "or remove dashboard: true",
        )
    if gateway.auth is not None and tls.mode == "off":
        yield Finding(
            ("gateway", "auth"),
            "with gateway.tls.mode off, every login would cross the network in clear text",
            _CLEAR_TEXT_FIX,
        )
    for index, model in enumerate(stack.models):
        if model.gateway is not None and model.gateway.auth is not None and tls.mode == "off":
            yield Finding(
                ("models", index, "gateway", "auth"),
                "with gateway.tls.mode off, every login to this route would cross the "
                "network in clear text",
                _CLEAR_TEXT_FIX,
            )
    yield from _tls(stack)
    ports = {"port": gateway.port, "https_port": gateway.https_port}
    if gateway.dashboard:
        ports["dashboard_port"] = gateway.dashboard_port
    if tls.mode == "off":
        del ports["https_port"]
    taken: dict[int, str] = {}
    for key, port in ports.items():
        if port in taken:
            yield Finding(("gateway", key), f"port {port} is also gateway.{taken[port]}",
                          "give each of the gateway's entry points its own port")
        taken.setdefault(port, key)


def _tls(stack: Stack) -> Iterator[Finding]:
    """Each TLS mode's own settings, and none of another mode's."""
    tls = stack.gateway.tls
    acme_keys = [key for key in ("acme_email", "acme_ca_server") if getattr(tls, key)]
    if tls.mode == "acme":
        if tls.acme_email is None:
            yield Finding(("gateway", "tls", "acme_email"),
                          "mode acme needs the e-mail address the ACME account is for",
                          "add acme_email: you@example.com")
        if not tls.names:
            yield Finding(("gateway", "tls", "names"),
                          "mode acme needs the DNS names to certify (routes match on path "
                          "only, so Traefik cannot tell them)",
                          "add names: [models.example.com]")
    elif acme_keys:
        yield Finding(("gateway", "tls", acme_keys[0]),
                      f"{acme_keys[0]} is used only with mode acme (mode is {tls.mode})",
                      "set mode: acme, or remove it")
    if tls.mode in ("off", "secret") and tls.names:
        yield Finding(("gateway", "tls", "names"),
                      f"names are for the certificates swarmai or ACME issue; mode "
                      f"{tls.mode} issues none",
                      "remove names (a secret's certificate holds its own names)")


def _runtime_blocks(stack: Stack) -> Iterator[Finding]:
    """``model:`` and ``app:`` where each runtime needs them."""
    for index, model in enumerate(stack.models):
        loc: Loc = ("models", index)
        if model.runtime == "app":
            yield from _app_rules(model, loc)
            continue
        if model.model is None:
            yield Finding((*loc, "model"),
                          f"runtime {model.runtime} serves a registry model: model: is required",
                          "add model: models:/NAME@ALIAS (or models:/NAME/VERSION)")
        if model.app is not None:
            yield Finding((*loc, "app"),
                          f"app: is for runtime app; this model runs {model.runtime}",
                          "remove app:, or set runtime: app to serve your own image")


# Keys that configure swarmai's own servers; an app has its own settings.
_NOT_FOR_APPS = {
    "batching": "batching: is done by swarmai's runtimes; your app batches (or not) itself",
    "server": "server: sets the limits of swarmai's runtimes; your app enforces its own",
}


def _app_rules(model: Model, loc: Loc) -> Iterator[Finding]:
    if model.app is None:
        yield Finding((*loc, "app"), "runtime app needs an app: block naming your server's image",
                      "add app: {image: REGISTRY/NAME:TAG, port: 8000}")
    for key, message in _NOT_FOR_APPS.items():
        if getattr(model, key) is not None:
            yield Finding((*loc, key), message,
                          f"remove {key}:, and hand your app its settings in environment: "
                          "(or app.command)")


def _storage(stack: Stack) -> Iterator[Finding]:
    storage = stack.storage
    if storage.backend == "external" and storage.endpoint is None:
        yield Finding(
            ("storage", "endpoint"),
            "storage.backend 'external' needs the S3 endpoint URL",
            "add endpoint: http://HOST:PORT",
        )
    if storage.backend != "external" and storage.endpoint is not None:
        yield Finding(
            ("storage", "endpoint"),
            f"endpoint is only used with backend 'external', not {storage.backend!r}",
            "remove endpoint, or set backend: external",
        )
    if storage.backend == "external" and storage.publish_port is not None:
        yield Finding(
            ("storage", "publish_port"),
            "publish_port publishes a managed store; an external store is not managed here",
            "remove publish_port",
        )


def _images(stack: Stack) -> Iterator[Finding]:
    registry = stack.image_registry
    if registry is not None and not IMAGE_REGISTRY.fullmatch(registry):
        yield Finding(
            ("images", IMAGE_REGISTRY_KEY),
            f"{registry!r} is not a registry address (HOST:PORT, no image name or tag)",
            "for example registry: 10.0.0.5:5000",
        )
    for key in stack.images:
        if key != IMAGE_REGISTRY_KEY and key not in DEFAULT_IMAGES:
            yield Finding(
                ("images", key),
                f"unknown image key {key!r}",
                (did_you_mean(key, [*DEFAULT_IMAGES, IMAGE_REGISTRY_KEY])
                 or "known keys: " + ", ".join([*DEFAULT_IMAGES, IMAGE_REGISTRY_KEY])),
            )


def _gpu_devices(stack: Stack, target: Target) -> Iterator[Finding]:
    for index, model in enumerate(stack.models):
        if model.gpus is None:
            continue
        loc: Loc = ("models", index, "gpus")
        yield from _duplicate_devices(model, loc)
        if target == "swarm":
            yield from _devices_on_node(stack, model, loc)
        if model.replicas > 1 and not model.gpus.share:
            yield Finding(
                ("models", index, "replicas"),
                f"{model.replicas} replicas cannot each hold the same pinned GPU "
                f"{', '.join(model.gpus.devices)}",
                "set gpus.share: true to let the replicas share it, or use one replica",
            )


def _duplicate_devices(model: Model, loc: Loc) -> Iterator[Finding]:
    assert model.gpus is not None
    seen: set[str] = set()
    for position, device in enumerate(model.gpus.devices):
        if device in seen:
            yield Finding((*loc, "devices", position), f"device {device!r} is listed twice")
        seen.add(device)


def _devices_on_node(stack: Stack, model: Model, loc: Loc) -> Iterator[Finding]:
    assert model.gpus is not None
    node = model.gpus.node
    if node is None:
        yield Finding(
            (*loc, "node"),
            "a GPU model on Swarm must name the node that holds its devices",
            "add node: <a hostname from nodes:>"
            + (f" ({', '.join(stack.nodes)})" if stack.nodes else ", and declare nodes:"),
        )
        return
    if node not in stack.nodes:
        yield Finding(
            (*loc, "node"),
            f"node {node!r} is not declared in nodes:",
            did_you_mean(node, stack.nodes) or "declare it under nodes: with its gpus",
        )
        return
    inventory = stack.nodes[node].gpus
    for position, device in enumerate(model.gpus.devices):
        if device not in inventory:
            yield Finding(
                (*loc, "devices", position),
                f"node {node!r} has no GPU {device!r}",
                f"its GPUs are {', '.join(inventory) or 'none'}",
            )


def _gpu_exclusivity(stack: Stack, target: Target) -> Iterator[Finding]:
    holders: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, model in enumerate(stack.models):
        if model.gpus is None:
            continue
        if target == "swarm" and model.gpus.node is None:
            continue  # already reported as a missing node
        node = (model.gpus.node or "") if target == "swarm" else "this host"
        for device in dict.fromkeys(model.gpus.devices):
            holders[(node, device)].append(index)
    for (node, device), indices in holders.items():
        if len(indices) < 2 or all(stack.models[i].gpus.share for i in indices):  # type: ignore[union-attr]
            continue
        names = ", ".join(stack.models[i].name for i in indices)
        for index in indices[1:]:
            yield Finding(
                ("models", index, "gpus", "devices"),
                f"GPU {device!r} on {node} is already held by another model ({names})",
                "give each model its own device, or set share: true on every holder",
            )
