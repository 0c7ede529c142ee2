"""Per-model settings (environment, volumes, shm_size, reservations, server) as rendered,
and the public route that keeps metrics and API descriptions private."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from swarmai.render import gateway, runtimes
from swarmai.render.bundle import service_plans
from swarmai.spec import Stack, load_stack
from swarmai.spec.reserved import env_instead, is_reserved_volume, reserved_targets

REPO = Path(__file__).resolve().parents[2]
SETTINGS = Path(__file__).resolve().parent / "stacks" / "settings.yaml"
Render = Callable[..., dict[str, Any]]


@pytest.fixture
def settings_stack() -> Stack:
    return load_stack(SETTINGS, "swarm")


def _model(stack: Stack, name: str) -> Any:
    return next(m for m in stack.models if m.name == name)


def test_fastapi_server_limits_become_variables(settings_stack: Stack,
                                                main_document: Render) -> None:
    env = main_document(settings_stack, "compose")["services"]["model-fraud"]["environment"]
    assert env["SWARMAI_WORKERS"] == "1"
    assert env["SWARMAI_MAX_BODY_BYTES"] == str(32 * 1024 * 1024)
    assert env["SWARMAI_MAX_QUEUE"] == "128"
    assert env["SWARMAI_PREDICT_TIMEOUT_S"] == "10"
    assert env["OMP_NUM_THREADS"] == "4" and env["FEATURE_FLAG"] == "true"


def test_unset_server_keys_render_no_variable(write_stack: Callable[..., Path]) -> None:
    stack = load_stack(write_stack("""
        version: 1
        name: demo
        models:
          - {name: a, runtime: fastapi, model: "models:/a/1", server: {timeout_s: 5}}
    """))
    env = runtimes.model_services(stack, stack.models[0])[0].environment
    assert env["SWARMAI_PREDICT_TIMEOUT_S"] == "5"
    assert not {"SWARMAI_WORKERS", "SWARMAI_MAX_BODY_BYTES", "SWARMAI_MAX_QUEUE"} & set(env)


def test_torchserve_server_keys_go_into_config_properties(settings_stack: Stack) -> None:
    props = runtimes.torchserve_properties(_model(settings_stack, "digits"))
    assert '"minWorkers":2,"maxWorkers":2' in props
    assert '"responseTimeout":60' in props
    size = 64 * 1024 * 1024
    assert f"max_request_size={size}\nmax_response_size={size}\n" in props
    assert "job_queue_size=50\n" in props


def test_tfserving_timeout_is_a_flag(settings_stack: Stack, main_document: Render) -> None:
    command = main_document(settings_stack, "swarm")["services"]["model-sentiment"]["command"]
    assert "--rest_api_timeout_in_ms=5000" in command


@pytest.mark.parametrize("target", ["swarm", "compose"])
def test_start_period_is_the_servers_alone(settings_stack: Stack, main_document: Render,
                                           target: str) -> None:
    services = main_document(settings_stack, target)["services"]
    assert services["model-sentiment"]["healthcheck"]["start_period"] == "20s"
    assert services["model-fraud"]["healthcheck"]["start_period"] == "180s"  # the default
    # The sync step still has the default: it downloads first.
    assert services["sync-sentiment"]["healthcheck"]["start_period"] == "180s"


def test_user_volumes_are_read_only_unless_asked(settings_stack: Stack,
                                                 main_document: Render) -> None:
    for target in ("compose", "swarm"):
        document = main_document(settings_stack, target)
        volumes = document["services"]["model-fraud"]["volumes"]
        assert {"type": "volume", "source": "lexicon", "target": "/opt/lexicon",
                "read_only": True} in volumes
        assert {"type": "bind", "source": "/srv/scratch", "target": "/scratch"} in volumes
        assert "lexicon" in document["volumes"]
        assert "/srv/scratch" not in document["volumes"]


def test_shm_size_is_a_tmpfs_on_swarm(settings_stack: Stack, main_document: Render) -> None:
    compose = main_document(settings_stack, "compose")["services"]["model-digits"]
    assert compose["shm_size"] == "512M"
    swarm = main_document(settings_stack, "swarm")["services"]["model-digits"]
    assert "shm_size" not in swarm, "stack deploy ignores shm_size"
    assert {"type": "tmpfs", "target": "/dev/shm",
            "tmpfs": {"size": 512 * 1024 * 1024}} in swarm["volumes"]


def test_reservations_sit_beside_limits_and_gpus(settings_stack: Stack,
                                                 main_document: Render) -> None:
    compose = main_document(settings_stack, "compose")["services"]
    assert compose["model-fraud"]["deploy"]["resources"] == {
        "limits": {"cpus": "2", "memory": "4G"},
        "reservations": {"cpus": "0.5", "memory": "1G"},
    }
    digits = compose["model-digits"]["deploy"]["resources"]["reservations"]
    assert digits["memory"] == "2G" and digits["devices"][0]["device_ids"] == ["0"]
    swarm = main_document(settings_stack, "swarm")["services"]["model-digits"]
    reservations = swarm["deploy"]["resources"]["reservations"]
    assert reservations["memory"] == "2G" and reservations["generic_resources"]


def test_settings_reach_the_server_only(settings_stack: Stack) -> None:
    sync = runtimes.model_services(settings_stack, _model(settings_stack, "sentiment"))[0]
    assert sync.role == "sync" and "TF_CPP_MIN_LOG_LEVEL" not in sync.environment


def test_a_canary_carries_the_models_settings(settings_stack: Stack) -> None:
    canary = runtimes.canary_service(settings_stack, _model(settings_stack, "fraud"), "9")
    assert canary.environment["LOG_LEVEL"] == "debug"
    assert any(m.target == "/opt/lexicon" for m in canary.volumes)


@pytest.mark.parametrize("path", [
    "/models/sentiment/metrics/x", "/models/sentiment/metrics", "/models/sentiment/metrics/",
    "/models/sentiment/docs", "/models/sentiment/docs/oauth2-redirect",
    "/models/sentiment/redoc", "/models/sentiment/openapi.json",
    "/models/sentiment/monitoring/prometheus/metrics", "/models/sentiment/metrics%2F",
    "/models/sentiment/metrics;x",
])
def test_private_paths_are_not_routed(settings_stack: Stack, path: str) -> None:
    assert not _routed(settings_stack, "sentiment", path)


@pytest.mark.parametrize("path", [
    "/models/sentiment", "/models/sentiment/v1/models/sentiment:predict",
    "/models/sentiment/metricsx", "/models/sentiment/openapiXjson", "/models/sentiment/v1/docs",
])
def test_model_paths_are_routed(settings_stack: Stack, path: str) -> None:
    assert _routed(settings_stack, "sentiment", path)


def _routed(stack: Stack, name: str, path: str) -> bool:
    """Evaluate the router's rule the way Traefik does (Go's regexp reads this
    expression as Python's re does; PathRegexp is unanchored, like re.search)."""
    rule = gateway.router_labels(stack, _model(stack, name), 8501, "swarm")[
        f"traefik.http.routers.{stack.name}-{name}.rule"]
    match = re.fullmatch(
        r"\(Path\(`(?P<p>[^`]+)`\) \|\| PathPrefix\(`(?P<pp>[^`]+)`\)\) "
        r"&& !PathRegexp\(`(?P<re>[^`]+)`\)", rule)
    assert match, rule
    public = path == match["p"] or path.startswith(match["pp"])
    return public and re.search(match["re"], path) is None


def test_a_longer_route_outranks_a_shorter_one_whatever_the_runtimes(
    write_stack: Callable[..., Path],
) -> None:
    # Traefik's default router priority is the rule's length.
    stack = load_stack(write_stack("""
        version: 1
        name: demo
        models:
          - {name: a, runtime: fastapi, model: "models:/a/1", route: /a}
          - {name: b, runtime: tfserving, model: "models:/b/1", route: /a/b}
    """))
    short, long = (gateway.router_labels(stack, m, 1, "swarm")[
        f"traefik.http.routers.demo-{m.name}.rule"] for m in stack.models)
    assert len(long) > len(short)


# app.yaml: what swarmai sets in a user's own app (runtime app) is reserved too.
STACK_FILES = [*sorted((REPO / "stacks").glob("*.yaml")), SETTINGS,
               SETTINGS.parent / "app.yaml"]


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=lambda p: p.stem)
@pytest.mark.parametrize("target", ["compose", "swarm"])
def test_variables_swarmai_sets_in_a_model_server_are_reserved(
    stack_file: Path, target: str, main_document: Render,
) -> None:
    """The spec refuses what the renderers set: a new variable of swarmai's own must
    be added to swarmai.spec.reserved, or a stack file could silently override it."""
    stack = load_stack(stack_file, target)  # type: ignore[arg-type]
    services = main_document(stack, target)["services"]
    for model in stack.models:
        rendered = set(services[f"model-{model.name}"]["environment"]) - set(model.environment)
        unreserved = sorted(name for name in rendered if env_instead(name) is None)
        assert not unreserved, f"{model.name}: not in swarmai.spec.reserved: {unreserved}"


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=lambda p: p.stem)
def test_mounts_swarmai_makes_are_reserved(stack_file: Path) -> None:
    """Likewise every path swarmai mounts into a model server, and every volume it names."""
    stack = load_stack(stack_file, "swarm")
    user_sources = {v.source for m in stack.models for v in m.volumes}
    for plan in service_plans(stack, "swarm", host_ports=False):
        own = [m for m in plan.volumes if m.source not in user_sources]
        assert all(is_reserved_volume(m.source) for m in own if not m.source.startswith("/")), \
            plan.name
        if plan.role != "model" or plan.routed_model is None:
            continue
        reserved = reserved_targets(plan.routed_model.runtime)
        targets = [m.target for m in own] + [f.target for f in plan.files]
        for target in targets:
            assert any(target == r or target.startswith(r + "/") for r in reserved), \
                f"{plan.name}: {target} is not in swarmai.spec.reserved"


@pytest.mark.parametrize(("model", "workers"), [
    ('{name: a, runtime: fastapi, model: "models:/a/1"}', None),
    ('{name: a, runtime: fastapi, model: "models:/a/1", resources: {cpus: "1.5"}}', "2"),
    ('{name: a, runtime: fastapi, model: "models:/a/1", resources: {cpus: "0.25"}}', "1"),
    ('{name: a, runtime: fastapi, model: "models:/a/1", resources: {cpus: "200"}}', "64"),
    ('{name: a, runtime: fastapi, model: "models:/a/1", resources: {cpus: "4"},'
     ' server: {workers: 3}}', "3"),
    ('{name: a, runtime: fastapi, model: "models:/a/1", resources: {cpus: "4"},'
     ' gpus: {devices: ["0"]}}', None),
])
def test_fastapi_workers_follow_the_cpus_a_replica_is_given(
        write_stack: Callable[..., Path], model: str, workers: str | None) -> None:
    stack = load_stack(write_stack(f"""
        version: 1
        name: demo
        models:
          - {model}
    """), "compose")
    env = runtimes.model_services(stack, stack.models[0])[0].environment
    assert env.get("SWARMAI_WORKERS") == workers
