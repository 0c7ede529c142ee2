"""Model servers, one per model, for each of the three runtimes (and a user's own
app, ``runtime: app``: :mod:`.app_runtime`).

TF Serving and TorchServe cannot read ``models:/`` URIs (nor ``s3://`` since
TF Serving 2.7), so each gets a model-sync sidecar that resolves the URI in
MLflow and lays the artifacts out in a volume the server reads.  swarmai's own
FastAPI server loads ``models:/NAME@ALIAS`` from MLflow itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace

from swarmai import modeluri
from swarmai.render import naming, settings
from swarmai.render.app_runtime import app_block, app_server
from swarmai.render.common import http_probe
from swarmai.render.plan import Healthcheck, Mount, RenderedFile, ServicePlan
from swarmai.render.torchserve_health import torchserve_health_check
from swarmai.spec import Model, Stack, image_for

# A sync step is healthy once it has downloaded its model's artifacts: allow a
# generous start period (a model server's is models[].start_period_s).
_SYNC_START_PERIOD_S = 180
# Zero failed requests while a task is replaced rest on three numbers:
# - the FastAPI server keeps accepting for DEREGISTER_S after SIGTERM, longer
#   than Traefik's Swarm refresh (2 s, gateway/traefik-defaults.yml; gateway.py
#   refuses a refresh that is not shorter), so the gateway has dropped the task
#   before its socket closes;
# - it then waits up to _FINISH_S for requests in flight;
# - the stop grace period (_DRAIN_S) exceeds both together, so Docker never
#   kills a server mid-request.
_DRAIN_S = 20
DEREGISTER_S = 5
_FINISH_S = 10
_SYNC_POLL_S = 30
_SYNC_MARKER = ".swarmai-synced"
# TorchServe's own archive version is not used: MLflow is the version authority,
# and a constant keeps the rendered per-model settings bound to the archive.
TORCHSERVE_ARCHIVE_VERSION = "1.0"
# Who each runtime runs as (naming.SWARMAI_USER and friends); an app runs as
# its image's user, which swarmai does not choose.
_RUNTIME_USERS = {
    "fastapi": naming.SWARMAI_USER,
    "tfserving": naming.SWARMAI_USER,
    "torchserve": naming.TORCHSERVE_USER,
}
_APP_USER = ("runs as the user its image names (USER in its Dockerfile), which swarmai "
             "does not choose; run it as a non-root user there")


def model_services(stack: Stack, model: Model,
                   model_images: Mapping[str, str] | None = None) -> list[ServicePlan]:
    """The serving service of ``model`` and, for external runtimes, its sync step.

    ``model_images``: a FastAPI model version's own server image, by version
    URI (lifecycle.model_images); versions not in it run the server image.
    """
    if model.runtime == "fastapi":
        return [_fastapi(stack, model, model_images or {})]
    if model.runtime == "app":
        app = app_server(model)
        return [_server(stack, model, image=app.image, command=app.command,
                        environment=app.environment, healthcheck=app.healthcheck,
                        ready_path=app.ready_path)]
    if model.runtime == "tfserving":
        return [_sync(stack, model, "tfserving"), _tfserving(stack, model)]
    return [_sync(stack, model, "torchserve"), _torchserve(stack, model)]


def canary_service(stack: Stack, model: Model, version: str,
                   model_images: Mapping[str, str] | None = None) -> ServicePlan:
    """One replica serving ``version`` of ``model``'s registered model, beside its own service.

    It has no router: the gateway reaches it only through the weighted router
    of the canary file (gateway.canary_config).  FastAPI models only: the
    external runtimes read a per-model store that holds one version.
    """
    if model.runtime != "fastapi":
        raise ValueError(f"model {model.name}: canaries are for fastapi models")
    pinned = model.model_copy(update={"model": modeluri.pinned(model.uri, version)})
    plan = _fastapi(stack, pinned, model_images or {})
    return replace(
        plan,
        name=naming.canary_service(model),
        replicas=1,
        routed_model=None,
        route_port=None,
        labels={**plan.labels, "swarmai.canary-of": model.name},
    )


def serving_port(model: Model) -> int:
    """The port Traefik forwards the model's route to."""
    if model.runtime == "app":
        return app_block(model).port
    return {
        "fastapi": naming.FASTAPI_PORT,
        "tfserving": naming.TFSERVING_REST_PORT,
        "torchserve": naming.TORCHSERVE_INFERENCE_PORT,
    }[model.runtime]


def runtime_files(model: Model) -> dict[str, str]:
    """Config files the model's runtime reads, by bundle path."""
    if model.runtime == "tfserving":
        files = {
            _path(model, "models.config"): tfserving_model_config(model),
            _path(model, "monitoring.config"): _TFSERVING_MONITORING,
        }
        if model.batching is not None:
            files[_path(model, "batching.config")] = tfserving_batching_config(model)
        return files
    if model.runtime == "torchserve":
        return {
            _path(model, "config.properties"): torchserve_properties(model),
            _path(model, "health.py"): torchserve_health_check(model),
        }
    return {}


def tfserving_model_config(model: Model) -> str:
    """TF Serving's ``ModelServerConfig`` text proto: serve the newest version."""
    return (
        "model_config_list {\n"
        "  config {\n"
        f"    name: '{model.name}'\n"
        f"    base_path: '{naming.TFSERVING_MODELS}/{model.name}'\n"
        "    model_platform: 'tensorflow'\n"
        "    model_version_policy { latest { num_versions: 1 } }\n"
        "  }\n"
        "}\n"
    )


_TFSERVING_MONITORING = (
    'prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }\n'
)


def tfserving_batching_config(model: Model) -> str:
    assert model.batching is not None
    return (
        f"max_batch_size {{ value: {model.batching.max_batch_size} }}\n"
        f"batch_timeout_micros {{ value: {model.batching.max_delay_ms * 1000} }}\n"
        "max_enqueued_batches { value: 1000 }\n"
        "num_batch_threads { value: 4 }\n"
    )


def torchserve_properties(model: Model) -> str:
    """TorchServe's config.properties.

    Token auth is off because the management API listens on loopback only and
    inference is reached through the gateway, which owns authentication; the
    model-registration API stays disabled.
    """
    batching = model.batching
    entry = {
        "defaultVersion": True,
        "marName": f"{model.name}.mar",
        "minWorkers": 1,
        "maxWorkers": 1,
        "batchSize": batching.max_batch_size if batching else 1,
        "maxBatchDelay": batching.max_delay_ms if batching else 0,
        "responseTimeout": 120,
        **settings.torchserve_model_settings(model),
    }
    models = {model.name: {TORCHSERVE_ARCHIVE_VERSION: entry}}
    lines = [
        f"inference_address=http://0.0.0.0:{naming.TORCHSERVE_INFERENCE_PORT}",
        f"management_address=http://127.0.0.1:{naming.TORCHSERVE_MANAGEMENT_PORT}",
        f"metrics_address=http://0.0.0.0:{naming.TORCHSERVE_METRICS_PORT}",
        f"model_store={naming.TORCHSERVE_STORE}",
        f"load_models={model.name}.mar",
        f"models={json.dumps(models, separators=(',', ':'))}",
        f"number_of_gpu={len(model.gpus.devices) if model.gpus else 0}",
        "disable_token_authorization=true",
        "enable_model_api=false",
        "install_py_dep_per_model=false",
        *settings.torchserve_property_lines(model),
    ]
    return "\n".join(lines) + "\n"


def _fastapi(stack: Stack, model: Model, model_images: Mapping[str, str]) -> ServicePlan:
    environment = {
        "MODEL_URI": model.uri,
        "MODEL_NAME": model.name,
        "MLFLOW_TRACKING_URI": naming.registry_read_url(),
        **naming.MLFLOW_CLIENT_ENV,
        "PORT": str(naming.FASTAPI_PORT),
        "SWARMAI_MODEL_CACHE": naming.MODEL_CACHE,
        "SWARMAI_DEREGISTER_SECONDS": str(DEREGISTER_S),
        "SWARMAI_DRAIN_SECONDS": str(_FINISH_S),
    }
    if model.batching is not None:
        environment["SWARMAI_MAX_BATCH_SIZE"] = str(model.batching.max_batch_size)
        environment["SWARMAI_MAX_DELAY_MS"] = str(model.batching.max_delay_ms)
    environment.update(settings.fastapi_environment(model))
    return _server(
        stack, model,
        image=model_images.get(model.uri) or image_for(stack.images, "fastapi"),
        environment=environment,
        volumes=(Mount("model-cache", naming.MODEL_CACHE),),
        # Prints /readyz's answer (MLflow's error) on failure, so `docker
        # inspect` and swarmai's failure report say why the model is not loaded.
        healthcheck=http_probe(naming.FASTAPI_PORT, "/readyz"),
        ready_path="/readyz",
    )


def _tfserving(stack: Stack, model: Model) -> ServicePlan:
    conf = f"{naming.CONF_DIR}/{model.name}"
    command = [
        f"--port={8500}",
        f"--rest_api_port={naming.TFSERVING_REST_PORT}",
        f"--model_config_file={conf}/models.config",
        f"--monitoring_config_file={conf}/monitoring.config",
        "--file_system_poll_wait_seconds=1",
        *settings.tfserving_flags(model),
    ]
    files = [
        _file(model, "models.config", conf),
        _file(model, "monitoring.config", conf),
    ]
    if model.batching is not None:
        command += ["--enable_batching=true", f"--batching_parameters_file={conf}/batching.config"]
        files.append(_file(model, "batching.config", conf))
    # The CPU image has no curl or wget, but it has bash: speak HTTP over
    # /dev/tcp and require the model's version status to be AVAILABLE.
    request = f"GET /v1/models/{model.name} HTTP/1.0\\r\\n\\r\\n"
    check = (
        f"exec 3<>/dev/tcp/127.0.0.1/{naming.TFSERVING_REST_PORT} && "
        f"printf '{request}' >&3 && grep -q '\"AVAILABLE\"' <&3"
    )
    key = "tfserving-gpu" if model.gpus else "tfserving"
    return _server(
        stack, model,
        image=image_for(stack.images, key),
        command=tuple(command),
        volumes=(
            Mount(naming.store_volume(model), naming.TFSERVING_MODELS, read_only=True, nocopy=True),
        ),
        files=tuple(files),
        healthcheck=("CMD", "bash", "-c", check),
        ready_path=f"/v1/models/{model.name}",
    )


def _torchserve(stack: Stack, model: Model) -> ServicePlan:
    conf = f"{naming.CONF_DIR}/{model.name}"
    mar = f"{naming.TORCHSERVE_STORE}/{model.name}.mar"
    # Wait for the sync step's archive, then run in the foreground so the
    # container exits (and is restarted) if the Java server dies.  The shell
    # stays PID 1: the torchserve launcher (Python) would ignore SIGTERM there.
    # On SIGTERM the trap logs why the model is not loaded, if it is not (the
    # healthcheck's one line: Swarm stops an unhealthy task this way, and the
    # cause is then in its last log lines), then asks TorchServe to stop (the
    # Java server shuts down cleanly) and waits for it.
    health = f"{conf}/health.py"
    start = (
        f"until [ -f {mar} ]; do sleep 1; done; "
        f"torchserve --foreground --ncs --disable-token-auth "
        f"--ts-config {conf}/config.properties & pid=$!; "
        f"trap 'python3 {health}; torchserve --stop' TERM INT; "
        "wait $pid; code=$?; "
        "while kill -0 $pid 2>/dev/null; do wait $pid; code=$?; done; "
        "exit $code"
    )
    key = "torchserve-gpu" if model.gpus else "torchserve"
    return _server(
        stack, model,
        image=image_for(stack.images, key),
        entrypoint=("/bin/sh", "-c", start),
        volumes=(
            Mount(naming.store_volume(model), naming.TORCHSERVE_STORE, read_only=True, nocopy=True),
        ),
        files=(_file(model, "config.properties", conf), _file(model, "health.py", conf)),
        healthcheck=("CMD", "python3", health),
        ready_path="/ping",
    )


def _server(
    stack: Stack,
    model: Model,
    *,
    image: str,
    healthcheck: tuple[str, ...],
    environment: dict[str, str] | None = None,
    command: tuple[str, ...] | None = None,
    entrypoint: tuple[str, ...] | None = None,
    volumes: tuple[Mount, ...] = (),
    files: tuple[RenderedFile, ...] = (),
    ready_path: str | None = None,
) -> ServicePlan:
    """What every model server shares: routing, labels, GPUs, drain and roll policy,
    and the stack file's environment, volumes and shm_size (swarmai's own win,
    though the spec already keeps the two apart)."""
    labels = {
        "swarmai.stack": stack.name,
        "swarmai.model": model.name,
        "swarmai.runtime": model.runtime,
    }
    user = _RUNTIME_USERS.get(model.runtime)
    if user is None:
        labels[naming.ROOT_LABEL] = _APP_USER
    if model.model is not None:  # an app may load no registry model
        labels["swarmai.model-uri"] = model.model
    exclusive_gpu = model.gpus is not None and not model.gpus.share
    # The runtimes that read a store wait for its sync step; those that load from
    # MLflow, for the registry proxy; an app without a registry model, for nothing.
    depends = ((naming.sync_service(model),) if model.runtime in ("tfserving", "torchserve")
               else (naming.REGISTRY_PROXY,) if model.model is not None else ())
    return ServicePlan(
        name=naming.model_service(model),
        image=image,
        role="model",
        command=command,
        entrypoint=entrypoint,
        environment={**settings.user_environment(model), **(environment or {})},
        networks=(naming.MODELS_NET,),
        volumes=(*volumes, *settings.user_mounts(model)),
        shm_size=model.shm_size,
        files=files,
        healthcheck=Healthcheck(healthcheck, start_period_s=model.start_period_s,
                                interval_s=5, retries=3),
        labels=labels,
        replicas=model.replicas,
        gpus=model.gpus,
        resources=model.resources,
        placement_node=model.gpus.node if model.gpus else None,
        routed_model=model,
        route_port=serving_port(model),
        ready_path=ready_path,
        depends_on=depends,
        stop_grace_s=_DRAIN_S,
        user=user,
        # Servers need no capability (their ports are above 1024); an app's
        # needs are its author's to know.
        least_privilege=user is not None,
        # An exclusive GPU cannot be held by the old and the new task at once.
        start_first=not exclusive_gpu,
    )


def _sync(stack: Stack, model: Model, layout: str) -> ServicePlan:
    return ServicePlan(
        name=naming.sync_service(model),
        image=image_for(stack.images, "model-sync"),
        role="sync",
        environment={
            "MODEL_URI": model.uri,
            "MODEL_NAME": model.name,
            "MLFLOW_TRACKING_URI": naming.registry_read_url(),
            **naming.MLFLOW_CLIENT_ENV,
            "SWARMAI_LAYOUT": layout,
            "SWARMAI_STORE": "/store",
            "SWARMAI_MODEL_CACHE": naming.MODEL_CACHE,
            "SWARMAI_POLL_SECONDS": str(_SYNC_POLL_S),
            "SWARMAI_ARCHIVE_VERSION": TORCHSERVE_ARCHIVE_VERSION,
        },
        networks=(naming.MODELS_NET,),
        volumes=(
            Mount(naming.store_volume(model), "/store"),  # seeded: the image owns /store
            Mount("model-cache", naming.MODEL_CACHE),
        ),
        healthcheck=Healthcheck(("CMD", "test", "-e", f"/store/{_SYNC_MARKER}"),
                                start_period_s=_SYNC_START_PERIOD_S),
        labels={"swarmai.stack": stack.name, "swarmai.model": model.name},
        user=naming.SWARMAI_USER,
        least_privilege=True,
        # It writes only its two volumes (downloads and the archiver's scratch go
        # there too) and small temporary files.
        read_only_root=True,
        tmpfs=("/tmp",),
        # One sync task on every node that may run the server: the volume is node-local.
        global_mode=True,
        # Two sync tasks must never write one node's store at once.
        start_first=False,
        gpus=None,
        depends_on=(naming.REGISTRY_PROXY,),
        placement_node=model.gpus.node if model.gpus else None,
    )


def _path(model: Model, filename: str) -> str:
    return f"runtimes/{model.name}/{filename}"


def _file(model: Model, filename: str, conf_dir: str) -> RenderedFile:
    return RenderedFile(f"{model.name}-{filename.replace('.', '-')}", _path(model, filename),
                        f"{conf_dir}/{filename}")
