"""load_stack on valid input: defaults, coercions, formats and immutability."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from swarmai.errors import SpecError
from swarmai.spec import (
    Batching,
    Gateway,
    GatewayAuth,
    Gpus,
    Model,
    Network,
    Registry,
    Reservations,
    Resources,
    Server,
    Stack,
    Storage,
    Volume,
    load_stack,
    size_bytes,
)

REPO = Path(__file__).resolve().parents[2]
VISION = REPO / "stacks" / "vision.yaml"

MINIMAL = """\
    version: 1
    name: demo
    models:
      - name: churn
        runtime: fastapi
        model: models:/churn/1
"""

Write = Callable[..., Path]


def one_model(extra: str = "", *, head: str = "", model: str = "models:/churn/1") -> str:
    """A one-model stack; ``extra`` is indented as keys of the model, ``head`` as top-level."""
    lines = ["version: 1", "name: demo", *head.splitlines(), "models:", "  - name: churn",
             "    runtime: fastapi", f"    model: {model}"]
    lines += [f"    {line}" for line in extra.splitlines()]
    return "\n".join(lines) + "\n"


def test_reference_example_is_valid() -> None:
    stack = load_stack(VISION)
    assert isinstance(stack, Stack)
    assert stack.name == "vision"
    assert [m.name for m in stack.models] == ["resnet", "bert", "churn"]
    assert [m.runtime for m in stack.models] == ["torchserve", "tfserving", "fastapi"]
    assert stack.nodes["gpu-a"].gpus == ("0", "1")
    assert stack.models[2].public_route == "/churn"
    assert stack.models[0].batching == Batching(max_batch_size=8, max_delay_ms=10)
    assert stack.registry.backend_store == "postgres"
    assert stack.gateway.auth is not None
    assert stack.gateway.auth.basic_users_secret == "gateway-htpasswd"


@pytest.mark.parametrize("target", ["swarm", "compose"])
def test_reference_example_is_valid_for_both_targets(target: str) -> None:
    load_stack(VISION, target)  # type: ignore[arg-type]


def test_defaults(write_stack: Write) -> None:
    stack = load_stack(write_stack(MINIMAL))
    model = stack.models[0]
    assert model.public_route == "/models/churn"
    assert model.route is None
    assert model.replicas == 1
    assert (model.gpus, model.batching, model.resources) == (None, None, None)
    assert stack.gateway == Gateway(port=80, dashboard=False, dashboard_port=8080, auth=None)
    assert stack.network == Network(ipvs="auto")
    assert stack.storage == Storage(
        backend="seaweedfs", bucket="mlflow", credentials_secret="s3-creds",
        endpoint=None, publish_port=None,
    )
    assert stack.registry == Registry(backend_store="sqlite",
                                      db_password_secret="mlflow-db-password")
    assert dict(stack.nodes) == {}
    assert dict(stack.images) == {}


def test_explicit_route_replaces_default(write_stack: Write) -> None:
    stack = load_stack(write_stack(one_model("route: /api/v2/churn")))
    assert stack.models[0].public_route == "/api/v2/churn"


@pytest.mark.parametrize(
    ("uri", "registered"),
    [
        ("models:/churn/1", "churn"),
        ("models:/churn/42", "churn"),
        ("models:/churn@production", "churn"),
        ("models:/churn@champion-2", "churn"),
        ("models:/churn@v2x", "churn"),
        ("models:/Fraud.Detector_v2-x@staging", "Fraud.Detector_v2-x"),
    ],
)
def test_model_uris_accepted(write_stack: Write, uri: str, registered: str) -> None:
    stack = load_stack(write_stack(one_model(model=uri)))
    assert stack.models[0].model == uri
    assert stack.models[0].registered_name == registered


def test_int_device_ids_become_text(write_stack: Write) -> None:
    text = one_model("gpus: {node: gpu-a, devices: [0, 1]}", head="nodes: {gpu-a: {gpus: [0, 1]}}")
    stack = load_stack(write_stack(text))
    assert stack.models[0].gpus == Gpus(node="gpu-a", devices=("0", "1"))
    assert stack.nodes["gpu-a"].gpus == ("0", "1")


def test_int_and_text_device_ids_match_each_other(write_stack: Write) -> None:
    text = one_model('gpus: {node: gpu-a, devices: [1]}', head='nodes: {gpu-a: {gpus: ["0", "1"]}}')
    assert load_stack(write_stack(text)).models[0].gpus.devices == ("1",)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "device",
    ["0", "7", "GPU-3f2c8a1e-0d4b-11ee-be56-0242ac120002", "MIG-4f2c8a1e-0d4b-11ee"],
)
def test_gpu_id_formats_accepted(write_stack: Write, device: str) -> None:
    stack = load_stack(write_stack(one_model(f'gpus: {{devices: ["{device}"]}}')), "compose")
    assert stack.models[0].gpus == Gpus(devices=(device,))


@pytest.mark.parametrize(
    ("cpus", "stored"), [("1.5", "1.5"), ("2", "2"), ("0.25", "0.25"), ('"1.0"', "1.0")]
)
def test_cpus_numbers_are_kept_as_text(write_stack: Write, cpus: str, stored: str) -> None:
    stack = load_stack(write_stack(one_model(f"resources: {{cpus: {cpus}}}")))
    assert stack.models[0].resources == Resources(cpus=stored)


@pytest.mark.parametrize(("memory", "stored"),
                         [("512M", "512M"), ("2G", "2G"), ("1.5g", "1.5g"), ("1024", "1024"),
                          ("64mb", "64mb")])
def test_memory_sizes_accepted(write_stack: Write, memory: str, stored: str) -> None:
    stack = load_stack(write_stack(one_model(f"resources: {{memory: {memory}}}")))
    assert stack.models[0].resources == Resources(memory=stored)


@pytest.mark.parametrize("ipvs", ["auto", "true", "false"])
def test_ipvs_modes(write_stack: Write, ipvs: str) -> None:
    stack = load_stack(write_stack(one_model(head=f"network: {{ipvs: {ipvs}}}")))
    assert stack.network.ipvs == {"auto": "auto", "true": True, "false": False}[ipvs]


def test_bounds_are_inclusive(write_stack: Write) -> None:
    text = one_model(
        "replicas: 1000\nbatching: {max_batch_size: 4096, max_delay_ms: 60000}",
        head="gateway: {port: 65535, dashboard_port: 1}",
    )
    stack = load_stack(write_stack(text))
    assert stack.gateway.port == 65535
    assert stack.models[0].replicas == 1000
    assert stack.models[0].batching == Batching(max_batch_size=4096, max_delay_ms=60000)
    low = one_model("batching: {max_batch_size: 1, max_delay_ms: 0}", head="gateway: {port: 1}")
    assert load_stack(write_stack(low)).gateway.port == 1


def test_name_of_exactly_40_characters_is_accepted(write_stack: Write) -> None:
    name = "a" + "-b" * 19 + "c"
    assert len(name) == 40
    text = MINIMAL.replace("name: demo", f"name: {name}")
    assert load_stack(write_stack(text)).name == name


def test_image_overrides(write_stack: Write) -> None:
    text = one_model(head="images: {traefik: 'registry.local/traefik:v3.7.15', "
                          "fastapi: 'registry.local/server@sha256:abc'}")
    stack = load_stack(write_stack(text))
    assert stack.images["traefik"] == "registry.local/traefik:v3.7.15"


def test_external_storage_with_endpoint(write_stack: Write) -> None:
    text = one_model(head="storage: {backend: external, endpoint: 'https://s3.example.com'}")
    assert load_stack(write_stack(text)).storage.endpoint == "https://s3.example.com"


def test_managed_storage_may_publish_its_port(write_stack: Write) -> None:
    text = one_model(head="storage: {backend: minio, publish_port: 9000}")
    assert load_stack(write_stack(text)).storage.publish_port == 9000


# --- per-model server settings ----------------------------------------------


def test_settings_default_to_nothing(write_stack: Write) -> None:
    model = load_stack(write_stack(MINIMAL)).models[0]
    assert (dict(model.environment), model.volumes, model.shm_size, model.server) == (
        {}, (), None, None)


def test_environment_values_are_text_as_written(write_stack: Write) -> None:
    text = one_model('environment: {THREADS: 4, RATIO: 0.5, DEBUG: true, QUIET: false, '
                     'EMPTY: "", http_proxy: "http://proxy:3128"}')
    env = load_stack(write_stack(text)).models[0].environment
    assert dict(env) == {"THREADS": "4", "RATIO": "0.5", "DEBUG": "true", "QUIET": "false",
                         "EMPTY": "", "http_proxy": "http://proxy:3128"}
    with pytest.raises(TypeError, match="immutable"):
        env["OTHER"] = "x"  # type: ignore[index]


def test_volumes_are_read_only_by_default(write_stack: Write) -> None:
    text = one_model("volumes:\n  - {source: lexicon, target: /opt/lexicon}\n"
                     "  - {source: /srv/scratch, target: /scratch, read_only: false}")
    assert load_stack(write_stack(text)).models[0].volumes == (
        Volume(source="lexicon", target="/opt/lexicon", read_only=True),
        Volume(source="/srv/scratch", target="/scratch", read_only=False),
    )


def test_reservations_beside_limits(write_stack: Write) -> None:
    text = one_model('resources: {cpus: 2, memory: 4G, reservations: {cpus: 2, memory: 4096M}}')
    assert load_stack(write_stack(text)).models[0].resources == Resources(
        cpus="2", memory="4G", reservations=Reservations(cpus="2", memory="4096M"))


def test_server_keys_and_shm_size(write_stack: Write) -> None:
    text = one_model("shm_size: 1G\nserver: {workers: 1, max_body_mb: 1024, max_queue: 1, "
                     "timeout_s: 3600}")
    model = load_stack(write_stack(text)).models[0]
    assert model.shm_size == "1G"
    assert model.server == Server(workers=1, max_body_mb=1024, max_queue=1, timeout_s=3600)


def test_a_route_login_replaces_the_stacks_and_groups_by_secret(write_stack: Write) -> None:
    text = """\
        version: 1
        name: demo
        gateway: {auth: {basic_users_secret: logins}}
        models:
          - {name: a, runtime: fastapi, model: "models:/a/1"}
          - {name: b, runtime: fastapi, model: "models:/b/1",
             gateway: {auth: {basic_users_secret: team}}}
          - {name: c, runtime: fastapi, model: "models:/c/1",
             gateway: {auth: {basic_users_secret: team}, max_body_mb: 1}}
          - {name: d, runtime: fastapi, model: "models:/d/1", gateway: {max_body_mb: 1}}
    """
    stack = load_stack(write_stack(text))
    assert [stack.login_for(m) for m in stack.models] == [
        GatewayAuth(basic_users_secret=name) for name in ("logins", "team", "team", "logins")]
    # The first place each secret is named: one entry per client group.
    assert stack.login_secrets() == {"logins": "gateway.auth.basic_users_secret",
                                     "team": "models[1].gateway.auth.basic_users_secret"}


def test_no_login_anywhere_names_no_login_secret(write_stack: Write) -> None:
    stack = load_stack(write_stack(MINIMAL))
    assert stack.login_for(stack.models[0]) is None
    assert stack.login_secrets() == {}


@pytest.mark.parametrize(("size", "expected"), [
    ("512M", 512 * 1024**2), ("1.5g", 1536 * 1024**2), ("64mb", 64 * 1024**2),
    ("100k", 102_400), ("1024", 1024), ("3b", 3),
])
def test_docker_sizes_in_bytes(size: str, expected: int) -> None:
    assert size_bytes(size) == expected


# --- immutability -----------------------------------------------------------


def test_fields_cannot_be_assigned() -> None:
    stack = load_stack(VISION)
    with pytest.raises(ValidationError, match="frozen"):
        stack.name = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        stack.models[0].replicas = 3  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        stack.gateway.port = 8080  # type: ignore[misc]
    gpus = stack.models[0].gpus
    assert gpus is not None
    with pytest.raises(ValidationError, match="frozen"):
        gpus.devices = ("1",)  # type: ignore[misc]


def test_sequences_are_tuples() -> None:
    stack = load_stack(VISION)
    assert isinstance(stack.models, tuple)
    assert isinstance(stack.nodes["gpu-a"].gpus, tuple)
    assert all(isinstance(m.gpus.devices, tuple) for m in stack.models if m.gpus)


def test_unknown_keys_are_refused_by_every_model() -> None:
    for kind in (Stack, Model, Gateway, Storage, Registry, Network, Gpus, Batching, Resources,
                 Reservations, Volume, Server):
        assert kind.model_config.get("extra") == "forbid", kind
        assert kind.model_config.get("frozen") is True, kind


def test_spec_error_is_raised_not_validation_error(write_stack: Write) -> None:
    with pytest.raises(SpecError):
        load_stack(write_stack(MINIMAL.replace("version: 1", "version: 3")))
