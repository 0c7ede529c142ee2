"""`swarmai plan`, its pure parts: shapes from rendered files and from inspect JSON, the
diff and its restart rules per target, the report (text from JSON), and that no secret
value can reach it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

import swarmai.engine as engine_module
from swarmai.engine import Engine
from swarmai.lifecycle import plan_live
from swarmai.lifecycle.plan import (
    CHANGES_PENDING_EXIT,
    Plan,
    diff,
    field_restarts,
    format_text,
    model_lines,
    service_fields,
)
from swarmai.lifecycle.plan_shapes import (
    DesiredState,
    LiveState,
    ServiceShape,
    compose_service,
    desired_state,
    format_bytes,
    parse_bytes,
    swarm_service,
    unescape,
)
from swarmai.lifecycle.secrets import fresh_secrets
from swarmai.registry_client import CheckResult
from swarmai.render import Serving, render_bundle
from swarmai.render.compose import SECRETS_DIR
from swarmai.spec import Stack, Target, load_stack

SERVER = "swarmai/server:0.1.0-18d8317d045b"
TRAEFIK = "swarmai/traefik:3.7.15-241adb08da60"
STACK = f"""\
version: 1
name: planned
images: {{fastapi: "{SERVER}", traefik: "{TRAEFIK}"}}
gateway: {{port: 18690, tls: {{mode: "off"}}}}  # as tests/e2e/test_plan.py
storage: {{backend: seaweedfs, bucket: models, credentials_secret: planned-s3}}
registry: {{backend_store: sqlite}}
models:
  - name: scorer
    runtime: fastapi
    model: models:/scorer@production
    route: /scorer
    resources: {{memory: 700M}}
"""
# What each edit of the e2e test changes in the stack text.
EDITED = (STACK.replace("route: /scorer", "route: /scorer2")
          .replace("memory: 700M", "memory: 800M")
          .replace("    resources:", "    replicas: 2\n    resources:"))
SERVER_ENV = ["PATH=/opt/swarmai/bin:/usr/bin:/bin", "LANG=C.UTF-8", "PYTHONUNBUFFERED=1"]
SERVER_LABELS = {"org.opencontainers.image.version": "0.1.0", "swarmai.image": "server"}


def _stack(write_stack: Callable[..., Path], text: str = STACK) -> Stack:
    return load_stack(write_stack(text))


def _desired(stack: Stack, target: Target, version: str | None = "1") -> DesiredState:
    serving = Serving(pinned={"scorer": version} if version else {})
    bundle = render_bundle(stack, target, ipvs=False, serving=serving)
    return desired_state(yaml.safe_load(bundle.files[bundle.main]), bundle.files, target,
                         stack.name)


def _rendered(stack: Stack, target: Target, version: str = "1") -> dict[str, Any]:
    """The rendered file as the engine reads it: `$$` interpolated to `$` (router rules)."""
    bundle = render_bundle(stack, target, ipvs=False, serving=Serving(pinned={"scorer": version}))
    document: dict[str, Any] = unescape(yaml.safe_load(bundle.files[bundle.main]))
    return document


def _swarm_inspect(stack: Stack, service: str) -> dict[str, Any]:
    """A service as `docker service inspect` showed the deployed stack's (e2e, Docker 26):
    stack deploy's labels added, env as a list, sizes in bytes, configs by name."""
    document = _rendered(stack, "swarm")
    rendered = document["services"][service]
    deploy = rendered["deploy"]
    namespace = {"com.docker.stack.namespace": stack.name}
    container: dict[str, Any] = {
        "Image": rendered["image"],
        "Labels": namespace,
        "Env": sorted(f"{k}={v}" for k, v in rendered["environment"].items()),
        "Mounts": [{"Type": "volume", "Source": f"{stack.name}_{m['source']}",
                    "Target": m["target"]} for m in rendered.get("volumes", [])
                   if m["type"] == "volume"],
        "Configs": [{"File": {"Name": c["target"], "UID": "0", "GID": "0", "Mode": 292},
                     "ConfigID": "kf2ci27ofqurolk0czk855yls",
                     "ConfigName": document["configs"][c["source"]]["name"]}
                    for c in rendered.get("configs", [])],
    }
    limits = deploy.get("resources", {}).get("limits", {})
    placement = deploy.get("placement", {})
    return {"ID": "tvn47xre3djt", "Spec": {
        "Name": f"{stack.name}_{service}",
        "Labels": {"com.docker.stack.image": rendered["image"], **namespace,
                   **deploy["labels"]},
        "TaskTemplate": {
            "ContainerSpec": container,
            "Resources": {"Limits": {"MemoryBytes": parse_bytes(limits["memory"])}}
            if "memory" in limits else {},
            "Placement": {
                **({"Constraints": placement["constraints"]}
                   if "constraints" in placement else {}),
                **({"Preferences": [{"Spread": {"SpreadDescriptor": "node.id"}}]}
                   if "preferences" in placement else {}),
            },
        },
        "Mode": {"Replicated": {"Replicas": deploy["replicas"]}},
        "EndpointSpec": {"Mode": "dnsrr", **({"Ports": [
            {"Protocol": "tcp", "TargetPort": p["target"], "PublishedPort": p["published"],
             "PublishMode": "host"} for p in rendered["ports"]]} if "ports" in rendered else {})},
    }}


def _compose_inspect(stack: Stack, service: str, directory: Path) -> dict[str, Any]:
    """A container as `docker container inspect` showed the Compose project's (e2e): the
    image's env and labels merged in, Compose's labels, configs bind-mounted from the
    state directory."""
    document = _rendered(stack, "compose")
    rendered = document["services"][service]
    limits = rendered.get("deploy", {}).get("resources", {}).get("limits", {})
    compose_labels = {"com.docker.compose.project": stack.name,
                      "com.docker.compose.service": service,
                      "com.docker.compose.config-hash": "8ab270a55580",
                      "com.docker.compose.container-number": "1"}
    env = [f"{k}={v}" for k, v in rendered["environment"].items()]
    return {
        "Id": f"{service}-1", "Image": "sha256:cb30049e32fb",
        "Config": {"Image": rendered["image"], "Env": env + SERVER_ENV,
                   "Labels": {**compose_labels, **SERVER_LABELS, **rendered.get("labels", {})}},
        "HostConfig": {
            "NanoCpus": 0, "Memory": parse_bytes(limits["memory"]) if "memory" in limits else 0,
            "DeviceRequests": None,
            "PortBindings": {f"{p['target']}/tcp": [{"HostIp": "", "HostPort": p["published"]}]
                             for p in rendered.get("ports", [])}},
        "Mounts": [{"Type": "bind", "Source": "/var/run/docker.sock",
                    "Destination": "/var/run/docker.sock"}]
        + [{"Type": "bind",
            "Source": str(directory / document["configs"][c["source"]]["file"]),
            "Destination": c["target"]} for c in rendered.get("configs", [])],
    }


SERVER_IMAGE = {"Config": {"Env": SERVER_ENV, "Labels": SERVER_LABELS}}


# --- shapes ---------------------------------------------------------------------------


def test_rendered_services_have_the_same_fields_on_both_targets(
        write_stack: Callable[..., Path]) -> None:
    stack = _stack(write_stack)
    swarm, compose = _desired(stack, "swarm"), _desired(stack, "compose")
    model = swarm.services["model-scorer"]
    assert (model.version, model.model, model.memory, model.replicas) == (
        "1", "scorer", 734003200, 1)
    assert "MODEL_URI" not in model.environment  # the pin shows once, as `version`
    assert "swarmai.model-uri" not in model.labels
    assert model.fields()["resources.limits.memory"] == "700M"
    assert (compose.services["model-scorer"].fields()["version"],
            compose.services["model-scorer"].fields()["resources.limits.memory"]) == ("1", "700M")
    assert swarm.networks == compose.networks == {"planned_models", "planned_registry",
                                                         "planned_engine"}
    assert swarm.secrets == compose.secrets == {"planned-s3"}
    assert swarm.configs.keys() == compose.configs.keys()
    # Content hashes: equal for equal files (Traefik's static file names its provider).
    assert swarm.configs["traefik-routes"] == compose.configs["traefik-routes"]
    assert swarm.configs["traefik-static"] != compose.configs["traefik-static"]


def test_an_unpinned_server_keeps_its_alias_uri(write_stack: Callable[..., Path]) -> None:
    model = _desired(_stack(write_stack), "swarm", version=None).services["model-scorer"]
    assert model.version is None
    assert model.environment["MODEL_URI"] == "models:/scorer@production"


def test_swarm_inspect_matches_the_rendered_stack(write_stack: Callable[..., Path]) -> None:
    stack = _stack(write_stack)
    desired = _desired(stack, "swarm")
    for service in ("model-scorer", "gateway", "mlflow"):
        live = swarm_service(_swarm_inspect(stack, service))
        assert service_fields(desired.services[service], live, "swarm") == (), service
    gateway = swarm_service(_swarm_inspect(stack, "gateway"))
    assert gateway.ports == ("18690:80/tcp (host)",)
    assert gateway.placement == ("node.role == manager",)
    assert "com.docker.stack.namespace" not in {**gateway.labels, **gateway.container_labels}


def test_compose_inspect_matches_the_rendered_file_less_the_image(
        write_stack: Callable[..., Path], tmp_path: Path) -> None:
    stack = _stack(write_stack)
    desired = _desired(stack, "compose")
    document = _rendered(stack, "compose")
    hashes = {str(tmp_path / document["configs"][key]["file"]): digest
              for key, digest in desired.configs.items()}
    for service in ("model-scorer", "gateway"):
        live = compose_service(_compose_inspect(stack, service, tmp_path), 1, SERVER_IMAGE,
                               lambda source, _target: hashes.get(source))
        assert "PATH" not in live.environment and "swarmai.image" not in live.labels
        assert not any(k.startswith("com.docker.compose.") for k in live.labels)
        assert service_fields(desired.services[service], live, "compose") == (), service


def test_a_digest_the_engine_resolved_is_no_change() -> None:
    want = ServiceShape(image="registry.local/server:1")
    have = ServiceShape(image="registry.local/server:1@sha256:" + "a" * 64)
    assert service_fields(want, have, "swarm") == ()
    pinned = ServiceShape(image="registry.local/server:1@sha256:" + "b" * 64)
    assert [f.field for f in service_fields(pinned, have, "swarm")] == ["image"]


def test_docker_sizes() -> None:
    assert parse_bytes("700M") == 700 * 2**20 and parse_bytes("2g") == 2 * 2**30
    assert parse_bytes("1.5G") == 3 * 2**29 and parse_bytes("512") == 512
    assert format_bytes(734003200) == "700M" and format_bytes(1000) == "1000"


# --- the diff -------------------------------------------------------------------------


def _edit_plan(write_stack: Callable[..., Path], target: Target) -> list[dict[str, Any]]:
    """The plan of the e2e test's edits (replicas, memory, route; v2 under the alias)
    against the stack deployed at v1, both sides from rendered files."""
    before, after = _desired(_stack(write_stack), target), _desired(
        _stack(write_stack, EDITED), target, version="2")
    live = LiveState(services=before.services,
                     configs={k: frozenset({v}) for k, v in before.configs.items()},
                     secrets=before.secrets, networks=before.networks, volumes=before.volumes)
    return [change.as_dict() for change in diff(after, live, target)]


def test_the_same_edits_change_the_same_fields_on_both_targets(
        write_stack: Callable[..., Path]) -> None:
    swarm, compose = _edit_plan(write_stack, "swarm"), _edit_plan(write_stack, "compose")

    def fields(changes: list[dict[str, Any]]) -> list[tuple[str, str, list[Any]]]:
        return [(c["kind"], c["name"], [(f["field"], f["before"], f["after"]) for f in
                                        c["fields"]]) for c in changes]

    assert fields(swarm) == fields(compose)
    by_name = {c["name"]: c for c in swarm}
    assert [f["field"] for f in by_name["model-scorer"]["fields"]] == [
        "version", "replicas", "resources.limits.memory",
        "labels.traefik.http.routers.planned-scorer.rule"]
    assert [(f["before"], f["after"]) for f in by_name["model-scorer"]["fields"][:3]] == [
        ("1", "2"), ("1", "2"), ("700M", "800M")]
    assert [c["name"] for c in swarm] == ["gateway", "model-scorer", "traefik-routes"]
    # Restarts differ, and say why: Swarm updates service labels in place but rolls the
    # gateway onto its new config; Compose re-creates on labels and on a file's content.
    restarts = {(c["name"]): c["restarts"] for c in swarm if c["kind"] == "service"}
    assert restarts == {"gateway": True, "model-scorer": True}
    assert {c["name"]: c["restarts"] for c in compose if c["kind"] == "service"} == {
        "gateway": True, "model-scorer": True}
    route = by_name["model-scorer"]["fields"][3]
    assert route["restarts"] is False
    assert {f["field"]: f["restarts"] for c in compose for f in c["fields"]}[
        route["field"]] is True


def test_restart_rules() -> None:
    assert not field_restarts("replicas", "swarm") and not field_restarts("replicas", "compose")
    assert not field_restarts("labels.traefik.enable", "swarm")
    assert field_restarts("labels.traefik.enable", "compose")
    assert field_restarts("container_labels.x", "swarm")
    assert field_restarts("configs./etc/x", "swarm") and field_restarts("configs./x", "compose")
    for name in ("image", "version", "env.X", "resources.limits.memory", "placement", "ports"):
        assert field_restarts(name, "swarm") and field_restarts(name, "compose")


def test_objects_are_created_removed_or_changed_by_name(write_stack: Callable[..., Path]) -> None:
    desired = _desired(_stack(write_stack), "swarm")
    live = LiveState(
        services={"model-old": ServiceShape(image="x"), **desired.services},
        configs={"traefik-routes": frozenset({"000000000000"}), "gone": frozenset({"1" * 12})},
        secrets=frozenset(),
        networks=frozenset({"planned_models", "planned_registry", "planned_engine",
                            "planned_other"}),
        volumes=desired.volumes - {"planned_model-cache"},
    )
    changes = [(c.kind, c.name, c.action) for c in diff(desired, live, "swarm")]
    assert changes == [
        ("service", "model-old", "remove"),
        ("config", "gone", "remove"),
        ("config", "mlflow-entrypoint", "create"),
        ("config", "registry-proxy", "create"),
        ("config", "s3-entrypoint", "create"),
        ("config", "traefik-routes", "change"),
        ("config", "traefik-static", "create"),
        ("secret", "planned-s3", "create"),
        ("volume", "planned_model-cache", "create"),
    ]  # deploy never removes a network, volume or secret: no "remove" for planned_other


# --- models and the report ------------------------------------------------------------


def test_model_lines_say_what_the_registry_and_the_servers_say(
        write_stack: Callable[..., Path]) -> None:
    stack = _stack(write_stack)
    deployed = LiveState(services=_desired(stack, "swarm").services)
    uri = "models:/scorer@production"
    [resolved] = model_lines(stack, [CheckResult(uri, True, 2, canary=3)], deployed)
    assert (resolved.registry, resolved.running, resolved.canary) == ("2", "1", "3")
    [missing] = model_lines(stack, [CheckResult(uri, False, error="nope")], LiveState())
    assert (missing.registry_state, missing.running_state) == ("missing", "not running")
    [unknown] = model_lines(stack, None, LiveState())
    assert unknown.registry_state == "unknown"


def test_the_text_is_made_from_the_json(write_stack: Callable[..., Path]) -> None:
    stack = _stack(write_stack)
    before = _desired(stack, "swarm")
    live = LiveState(services=before.services,
                     configs={k: frozenset({v}) for k, v in before.configs.items()},
                     secrets=before.secrets, networks=before.networks, volumes=before.volumes)
    unchanged = Plan("planned", "swarm", tuple(diff(before, live, "swarm")), tuple(
        model_lines(stack, [CheckResult("models:/scorer@production", True, 1)], live)))
    assert not unchanged.pending
    assert format_text(unchanged.as_dict()) == (
        "stack planned (swarm): no changes\n"
        "models:\n"
        "  scorer  models:/scorer@production  registry: 1  running: 1")
    edited = _desired(_stack(write_stack, EDITED), "swarm", version="2")
    plan = Plan("planned", "swarm", tuple(diff(edited, live, "swarm")))
    data = json.loads(json.dumps(plan.as_dict()))
    assert data["pending"] and data["summary"] == {"create": 0, "change": 3, "remove": 0}
    text = format_text(data)
    assert text.splitlines()[:4] == [
        "stack planned (swarm): 3 to change, 0 to create, 0 to remove",
        "~ service gateway (restarts)",
        f"    configs./etc/traefik/dynamic/routes.yml: {before.configs['traefik-routes']} -> "
        f"{edited.configs['traefik-routes']}",
        "~ service model-scorer (restarts)",
    ]
    assert "    replicas: 1 -> 2" in text and "    resources.limits.memory: 700M -> 800M" in text
    assert CHANGES_PENDING_EXIT == 3


# --- reading Compose, and secrets -----------------------------------------------------


def test_compose_live_lists_secret_files_and_never_shows_a_value(
        write_stack: Callable[..., Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    stack = _stack(write_stack)
    directory = tmp_path / "state"
    bundle = render_bundle(stack, "compose", ipvs=False, serving=Serving(pinned={"scorer": "1"}))
    for path, text in bundle.files.items():
        (directory / path).parent.mkdir(parents=True, exist_ok=True)
        (directory / path).write_text(text)
    values = {name: fresh().content for name, fresh in fresh_secrets(stack).items()}
    (directory / SECRETS_DIR).mkdir()
    for name, content in values.items():
        (directory / SECRETS_DIR / name).write_text(content)
    containers = {s: _compose_inspect(stack, s, directory) for s in ("model-scorer", "gateway")}
    fake = {
        "project_containers": lambda engine, project: [
            {"Id": c["Id"], "Labels": c["Config"]["Labels"]} for c in containers.values()],
        "inspect_container": lambda engine, ident: containers[ident.removesuffix("-1")],
        "inspect_image": lambda engine, ref: SERVER_IMAGE,
        "networks_labelled": lambda engine, label: ["planned_models", "planned_registry",
                                                    "planned_engine"],
        "volumes_labelled": lambda engine, label: [],
    }
    for name, function in fake.items():
        monkeypatch.setattr(engine_module, name, function)  # what plan_live calls
    engine = cast(Engine, object())
    live = plan_live.compose_live(engine, stack, directory)
    assert live.secrets == {"planned-s3"}
    assert live.configs.keys() == {"traefik-static", "traefik-routes", "mlflow-entrypoint",
                                   "registry-proxy", "s3-entrypoint"}
    # The registry does not run here: versions compare as they run, models say unknown.
    plan = plan_live.make_plan(engine, stack, "compose", live, offline=True)
    report = json.dumps(plan.as_dict()) + format_text(plan.as_dict())
    assert [(c.kind, c.name, c.action) for c in plan.changes if c.kind != "volume"] == [
        ("service", "engine-proxy", "create"), ("service", "mlflow", "create"),
        ("service", "registry-proxy", "create"), ("service", "s3", "create")]
    assert plan.models[0].registry_state == "unknown" and plan.models[0].running == "1"
    tokens = [t for content in values.values() for t in content.replace("=", " ").split()
              if len(t) >= 12]
    assert tokens and not [t for t in tokens if t in report]
