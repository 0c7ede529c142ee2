"""The model registry: MLflow, its database, and the S3 store for its artifacts.

MLflow runs in proxied-artifact mode (``--artifacts-destination s3://...``), so
only the MLflow server holds S3 credentials; model servers and ``swarmai
models push`` need nothing but the tracking URL.
"""

from __future__ import annotations

from swarmai.render import naming
from swarmai.render.plan import Healthcheck, Mount, Port, RenderedFile, ServicePlan
from swarmai.spec import Stack, image_for

MLFLOW_ENTRYPOINT = "registry/mlflow-entrypoint.sh"
S3_ENTRYPOINT = "registry/s3-entrypoint.sh"
_SCRIPTS_DIR = "/etc/swarmai"

# MLflow 3.5+ rejects Host headers it does not know (DNS-rebinding guard); the
# in-stack DNS name must be allowed or every model server gets a 403.
_ALLOWED_HOSTS = ("mlflow", "mlflow:*", "localhost", "localhost:*", "127.0.0.1", "127.0.0.1:*",
                  naming.REGISTRY_PROXY, f"{naming.REGISTRY_PROXY}:*")

# botocore >= 1.36 sends CRC checksums that several S3-compatible stores reject;
# only send/verify them when an operation requires it.
_S3_CHECKSUM_ENV = {
    "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
    "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
}

# MLflow 3's server starts a job runner beside itself by default: Huey consumer
# processes that each import MLflow (tens of CPU seconds per start, and their
# memory for good) to run GenAI jobs a model registry never submits.
_NO_JOB_RUNNER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}

# Why MLflow and the S3 store stay root (naming.ROOT_LABEL), without a capability.
_OWNS_VOLUMES = ("owns its data volume, which earlier swarmai versions created as root's "
                 "(a new owner is a migration, not a render); it holds no capability")


def registry_services(stack: Stack) -> list[ServicePlan]:
    """MLflow, plus Postgres and the S3 store when the stack manages them."""
    services = [mlflow_service(stack)]
    if stack.registry.backend_store == "postgres":
        services.append(postgres_service(stack))
    if stack.storage.backend != "external":
        services.append(s3_service(stack))
    return services


def mlflow_service(stack: Stack) -> ServicePlan:
    postgres = stack.registry.backend_store == "postgres"
    environment = {
        "SWARMAI_S3_SECRET": stack.storage.credentials_secret,
        "SWARMAI_BUCKET": stack.storage.bucket,
        "SWARMAI_MLFLOW_PORT": str(naming.MLFLOW_PORT),
        "SWARMAI_ALLOWED_HOSTS": ",".join((*_ALLOWED_HOSTS, f"{stack.name}_mlflow")),
        "SWARMAI_BACKEND_STORE_URI": (
            f"postgresql+psycopg2://mlflow@{naming.POSTGRES}:{naming.POSTGRES_PORT}/mlflow"
            if postgres
            else "sqlite:////var/lib/mlflow/mlflow.db"
        ),
        "MLFLOW_S3_ENDPOINT_URL": naming.s3_endpoint(stack),
        **_S3_CHECKSUM_ENV,
        **_NO_JOB_RUNNER_ENV,
    }
    secrets = [stack.storage.credentials_secret]
    volumes: tuple[Mount, ...] = ()
    depends = [naming.S3] if stack.storage.backend != "external" else []
    if postgres:
        environment["SWARMAI_DB_SECRET"] = stack.registry.db_password_secret
        environment["SWARMAI_DB_HOST"] = naming.POSTGRES
        secrets.append(stack.registry.db_password_secret)
        depends.append(naming.POSTGRES)
    else:
        volumes = (Mount("mlflow-db", "/var/lib/mlflow"),)
    probe = f"http://127.0.0.1:{naming.MLFLOW_PORT}/health"
    return ServicePlan(
        name=naming.MLFLOW,
        image=image_for(stack.images, "mlflow"),
        role="registry",
        entrypoint=("/bin/sh", f"{_SCRIPTS_DIR}/mlflow-entrypoint.sh"),
        environment=environment,
        # Model servers read it through the registry proxy; nothing on the models
        # network can write it.
        networks=(naming.REGISTRY_NET,),
        volumes=volumes,
        files=(RenderedFile("mlflow-entrypoint", MLFLOW_ENTRYPOINT,
                            f"{_SCRIPTS_DIR}/mlflow-entrypoint.sh"),),
        secrets=tuple(secrets),
        # Its entrypoint migrates the schema before the server starts (`mlflow db
        # upgrade`: half a minute on a busy 2-core host even when current, longer for
        # a real migration); a longer start period costs nothing once it is healthy.
        healthcheck=Healthcheck(_python_http_probe(probe), start_period_s=180),
        depends_on=tuple(depends),
        # SQLite allows one writer: never run two MLflow tasks on it at once.
        start_first=postgres,
        least_privilege=True,
        labels={naming.ROOT_LABEL: _OWNS_VOLUMES},
    )


def postgres_service(stack: Stack) -> ServicePlan:
    secret = stack.registry.db_password_secret
    return ServicePlan(
        name=naming.POSTGRES,
        image=image_for(stack.images, "postgres"),
        role="database",
        environment={
            "POSTGRES_USER": "mlflow",
            "POSTGRES_DB": "mlflow",
            "POSTGRES_PASSWORD_FILE": f"{naming.SECRETS_DIR}/{secret}",
        },
        networks=(naming.REGISTRY_NET,),
        volumes=(Mount("postgres-data", "/var/lib/postgresql/data"),),
        secrets=(secret,),
        healthcheck=Healthcheck(
            ("CMD", "pg_isready", "-U", "mlflow", "-d", "mlflow", "-h", "127.0.0.1"),
            start_period_s=30,
        ),
        stop_grace_s=30,
        # Two Postgres servers must never share one data directory.
        start_first=False,
        labels={naming.ROOT_LABEL: "its entrypoint starts as root to own the data directory, "
                "then runs the server as the postgres user"},
    )


# On SIGTERM, SeaweedFS's filer stops taking requests at once (every S3 write
# goes through it), then waits a fixed 15 s for gRPC streams its own S3 gateway
# never ends.  Nothing is written after the first second, and its volume files
# and filer store are crash-consistent, so a kill after a few seconds loses
# nothing and spares every stop and roll of the store those 15 s.
_SEAWEEDFS_STOP_GRACE_S = 5


def s3_service(stack: Stack) -> ServicePlan:
    backend = stack.storage.backend
    port = naming.SEAWEEDFS_S3_PORT if backend == "seaweedfs" else naming.MINIO_PORT
    published = stack.storage.publish_port
    if backend == "seaweedfs":
        probe = ("CMD-SHELL", f"wget -q -O /dev/null http://127.0.0.1:{port}/healthz || exit 1")
    else:
        probe = ("CMD-SHELL", f"curl -fsS http://127.0.0.1:{port}/minio/health/ready || exit 1")
    return ServicePlan(
        name=naming.S3,
        image=image_for(stack.images, backend),
        role="storage",
        entrypoint=("/bin/sh", f"{_SCRIPTS_DIR}/s3-entrypoint.sh"),
        environment={
            "SWARMAI_S3_BACKEND": backend,
            "SWARMAI_S3_SECRET": stack.storage.credentials_secret,
        },
        networks=(naming.REGISTRY_NET,),
        volumes=(Mount("s3-data", "/data"),),
        files=(RenderedFile("s3-entrypoint", S3_ENTRYPOINT,
                            f"{_SCRIPTS_DIR}/s3-entrypoint.sh"),),
        secrets=(stack.storage.credentials_secret,),
        healthcheck=Healthcheck(probe, start_period_s=30),
        ports=(Port(published, port),) if published else (),
        stop_grace_s=_SEAWEEDFS_STOP_GRACE_S if backend == "seaweedfs" else 30,
        start_first=False,
        least_privilege=True,
        labels={naming.ROOT_LABEL: _OWNS_VOLUMES},
    )


def _python_http_probe(url: str) -> tuple[str, ...]:
    """A healthcheck for Python images that ship no curl: GET ``url``, fail on error."""
    code = f"import urllib.request; urllib.request.urlopen({url!r}, timeout=4)"
    return ("CMD", "python3", "-c", code)
