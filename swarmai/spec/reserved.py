"""What swarmai itself sets inside a model server, so a stack file may not.

The renderers read the container paths from here (through
:mod:`swarmai.render.naming`), so the spec refuses exactly the paths that are
rendered; ``tests/render`` checks that every variable and mount swarmai renders
for a model server is covered by these tables.
"""

from __future__ import annotations

from swarmai.spec.fields import Runtime

SECRETS_DIR = "/run/secrets"
MODEL_CACHE = "/var/cache/swarmai/models"
TFSERVING_MODELS = "/models"
TORCHSERVE_STORE = "/home/model-server/model-store"
# Rendered runtime configs, one folder per model below it.
CONF_DIR = "/etc/swarmai"
# Docker's own shared-memory mount; on Swarm, shm_size is rendered as a tmpfs there.
SHM = "/dev/shm"

_RUNTIME_MOUNTS: dict[Runtime, tuple[str, ...]] = {
    "fastapi": (MODEL_CACHE,),
    "tfserving": (TFSERVING_MODELS, CONF_DIR),
    "torchserve": (TORCHSERVE_STORE, CONF_DIR),
    "app": (),  # swarmai mounts nothing into an app
}


def reserved_targets(runtime: Runtime) -> tuple[str, ...]:
    """Container paths a user volume may not be mounted at, inside, or above."""
    return (*_RUNTIME_MOUNTS[runtime], SECRETS_DIR, SHM)


# Variable name -> what to do instead (a hint for the user).
RESERVED_ENV = {
    "MODEL_URI": "set the model's `model:` instead",
    "MODEL_NAME": "it is the model's `name:`",
    "MLFLOW_TRACKING_URI": "swarmai points every server at the stack's own MLflow",
    "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "artifacts always stream through MLflow",
    "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "artifacts always stream through MLflow",
    "PORT": "the gateway routes to the runtime's fixed port (runtime app: set app.port)",
    "NVIDIA_VISIBLE_DEVICES": "use `gpus:` instead",
}
# Prefix -> what to do instead.
_SERVER_KEYS = "use `server:` (workers, max_body_mb, max_queue, timeout_s) or `batching:` instead"
RESERVED_ENV_PREFIXES = {
    "SWARMAI_": _SERVER_KEYS,
    "AWS_": "only MLflow talks to S3; credentials belong in Docker secrets, not in environment",
    # TorchServe ignores TS_* unless enable_envvars_config=true, which swarmai
    # leaves off: config.properties is rendered from the stack file instead.
    "TS_": _SERVER_KEYS,
}


def env_instead(name: str) -> str | None:
    """What to do instead of setting variable ``name``, if swarmai reserves it."""
    upper = name.upper()  # `model_uri` would only confuse: refuse it too
    if upper in RESERVED_ENV:
        return RESERVED_ENV[upper]
    for prefix, instead in RESERVED_ENV_PREFIXES.items():
        if upper.startswith(prefix):
            return instead
    return None


# Named volumes swarmai renders; a model mounting one would read another
# service's data (the registry's database, the S3 store, other models' stores).
RESERVED_VOLUMES = ("model-cache", "gateway-dynamic", "mlflow-db", "postgres-data", "s3-data")
RESERVED_VOLUME_PREFIXES = ("store-",)


def is_reserved_volume(name: str) -> bool:
    return name in RESERVED_VOLUMES or name.startswith(RESERVED_VOLUME_PREFIXES)
