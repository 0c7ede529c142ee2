"""MLflow against a real Postgres and a real S3 store, each from swarmai's offline images.

No stack, no Swarm, no Compose: testcontainers starts exactly the three registry
services on one private network, configured as swarmai's rendered stack does
(swarmai/render/registry.py and the registry entrypoints):

* Postgres: ``POSTGRES_USER=mlflow``, ``POSTGRES_DB=mlflow``, the password in a
  secret file (``POSTGRES_PASSWORD_FILE``), network clients need it (scram).
* SeaweedFS: ``weed server -s3`` with one S3 identity made from the credentials
  secret (an AWS shared-credentials file); anonymous access is refused.
* MLflow: ``mlflow server --backend-store-uri postgresql+psycopg2://mlflow@postgres/...``
  (password through a pgpass file, never in the URI) ``--artifacts-destination
  s3://BUCKET/artifacts``, with boto3 reading the keys from the credentials file.

From the host, through ports published on 127.0.0.1 only, a model is logged,
registered and given the alias ``production``; ``models:/NAME@production`` is
resolved and downloaded; the artifact is checked in the bucket with a separate
S3 client (minio), the alias in Postgres itself; wrong S3 keys are refused.

Only images already built locally are used (``swarmai images build --offline``
makes the missing ones): pulling is refused outright, and the Ryuk reaper (an
image that would be pulled) is off; the fixtures remove what they start.
"""

from __future__ import annotations

import contextlib
import io
import json
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

import docker
import docker.errors
import docker.models.images
import mlflow
import pytest
import urllib3
import yaml
from minio import Minio
from minio.error import S3Error
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts
from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from swarmai.images import image_tags

pytestmark = pytest.mark.e2e

KEYS = ("postgres", "seaweedfs", "mlflow")
# What swarmai's renderer uses: service names (DNS aliases), ports, database and user.
POSTGRES, S3, MLFLOW = "postgres", "s3", "mlflow"
S3_PORT, MLFLOW_PORT, PG_PORT = 8333, 5000, 5432
BUCKET = "models"
SECRETS = "/run/secrets"
S3_SECRET, DB_SECRET = "registry-s3", "registry-db"
ALLOWED_HOSTS = "mlflow,mlflow:*,localhost,localhost:*,127.0.0.1,127.0.0.1:*"
BACKEND_URI = f"postgresql+psycopg2://mlflow@{POSTGRES}:{PG_PORT}/mlflow"
MODEL = "tc-scorer"
# Every wait below ends on real readiness; these only bound it.
READY_S = {POSTGRES: 60.0, S3: 60.0, MLFLOW: 120.0}
POLL_S = 0.25


@dataclass(frozen=True)
class Registry:
    """The running services, and how the host reaches them (127.0.0.1 only)."""

    tracking_uri: str
    s3_endpoint: str  # host:port, as the minio client takes it
    access_key: str
    secret_key: str
    containers: dict[str, DockerContainer]

    def s3(self, access_key: str | None = None, secret_key: str | None = None,
           *, anonymous: bool = False) -> Minio:
        """A minio client on the store: swarmai's keys unless told otherwise."""
        http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=3, read=10),
                                   retries=urllib3.Retry(total=0))
        if anonymous:
            return Minio(self.s3_endpoint, secure=False, region="us-east-1", http_client=http)
        return Minio(self.s3_endpoint, access_key=access_key or self.access_key,
                     secret_key=secret_key or self.secret_key, secure=False,
                     region="us-east-1", http_client=http)

    def psql(self, query: str) -> str:
        """Run ``query`` in Postgres itself (local socket: trusted, as the healthcheck)."""
        result = self.containers[POSTGRES].exec(
            ["psql", "-U", "mlflow", "-d", "mlflow", "-v", "ON_ERROR_STOP=1", "-tAc", query])
        output = result.output.decode()
        assert result.exit_code == 0, output
        return output.strip()


def _refuse_pull(*args: object, **kwargs: object) -> NoReturn:
    raise AssertionError(f"an image pull was attempted {args[1:]}: only local images may be used")


@pytest.fixture(scope="module")
def engine(docker_cli: str) -> Iterator[docker.DockerClient]:
    """The Docker SDK client; nothing may be pulled while this module runs, nor Ryuk started."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
        patch.setattr(testcontainers_config, "ryuk_disabled", True)
        patch.setattr(testcontainers_config, "hub_image_name_prefix", "")
        patch.setattr(docker.models.images.ImageCollection, "pull", _refuse_pull)
        client = docker.from_env(timeout=60)
        try:
            yield client
        finally:
            client.close()


def _present(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


@pytest.fixture(scope="module")
def registry_images(engine: docker.DockerClient) -> dict[str, str]:
    """The offline tags of Postgres, SeaweedFS and MLflow, built when missing."""
    tags = image_tags(offline=True)
    wanted = {key: tags[key] for key in KEYS}
    missing = [key for key, tag in wanted.items() if not _present(engine, tag)]
    if missing:
        built = subprocess.run(
            [sys.executable, "-c", "from swarmai.cli import main; main()",
             "images", "build", "--offline", *(f"--only={key}" for key in missing)],
            capture_output=True, text=True, timeout=1800, check=False)
        assert built.returncode == 0, built.stdout + built.stderr
    absent = [tag for tag in wanted.values() if not _present(engine, tag)]
    assert not absent, f"not built: {absent}"
    return wanted


def _wait_until(what: str, ready: Callable[[], bool], timeout: float,
                *containers: DockerContainer) -> None:
    """Poll ``ready`` until it holds; fail at once (with logs) when a container exits."""
    deadline = time.monotonic() + timeout
    while not ready():
        for container in containers:
            wrapped = container.get_wrapped_container()
            wrapped.reload()
            if wrapped.status != "running":
                pytest.fail(f"{what}: {container.image} is {wrapped.status}:\n{_logs(container)}")
        if time.monotonic() > deadline:
            logs = "\n".join(_logs(c) for c in containers)
            pytest.fail(f"{what}: not ready after {timeout:.0f} s\n{logs}")
        time.sleep(POLL_S)


def _logs(container: DockerContainer) -> str:
    out, err = container.get_logs()
    return f"--- {container.image}\n{(out + err).decode(errors='replace')[-4000:]}"


def _published(container: DockerContainer, port: int) -> int:
    """The host port ``port`` is published on; it must be bound to 127.0.0.1 only."""
    wrapped = container.get_wrapped_container()
    wrapped.reload()
    bindings: list[dict[str, str]] = wrapped.attrs["NetworkSettings"]["Ports"][f"{port}/tcp"]
    assert bindings, f"{container.image}: {port} is not published"
    assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}, bindings
    return int(bindings[0]["HostPort"])


def _service(image: str, network: Network, alias: str, label: str) -> DockerContainer:
    container = DockerContainer(image).with_network(network).with_network_aliases(alias)
    return container.with_kwargs(labels={"swarmai.test": label})


def _loopback(container: DockerContainer, port: int) -> DockerContainer:
    """Publish ``port`` on a free port of 127.0.0.1 (docker-py's ``(host_ip,)`` binding)."""
    ports: dict[str, Any] = container.ports
    ports[f"{port}/tcp"] = ("127.0.0.1",)
    return container


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _s3_ready(client: Minio) -> bool:
    """The bucket exists (created here, as swarmai's MLflow entrypoint does) and takes writes."""
    try:
        if not client.bucket_exists(BUCKET):
            client.make_bucket(BUCKET)
        client.put_object(BUCKET, ".ready", io.BytesIO(b"ok"), 2)
        client.remove_object(BUCKET, ".ready")
    except (S3Error, urllib3.exceptions.HTTPError, ConnectionError):
        return False
    return True


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, engine: docker.DockerClient,
             registry_images: dict[str, str]) -> Iterator[Registry]:
    """Postgres, SeaweedFS and MLflow on one private network; removed afterwards."""
    label = f"registry-containers-{uuid.uuid4().hex[:12]}"
    files = tmp_path_factory.mktemp("registry")
    access, secret = f"swarmai{secrets.token_hex(6)}", secrets.token_urlsafe(24)
    password = secrets.token_urlsafe(18)
    # The credentials secret: an AWS shared-credentials file (both services read it).
    credentials = files / S3_SECRET
    credentials.write_text(
        f"[default]\naws_access_key_id = {access}\naws_secret_access_key = {secret}\n")
    # What s3-entrypoint.sh makes of it for SeaweedFS.
    identities = files / "s3.json"
    identities.write_text(json.dumps({"identities": [{
        "name": "swarmai", "credentials": [{"accessKey": access, "secretKey": secret}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    db_secret = files / DB_SECRET
    db_secret.write_text(password)
    # What mlflow-entrypoint.sh makes of the database secret: libpq's pgpass file.
    pgpass = files / "pgpass"
    pgpass.write_text(f"{POSTGRES}:{PG_PORT}:mlflow:mlflow:{password}\n")
    for path in (credentials, identities, db_secret, pgpass):
        path.chmod(0o600)

    with contextlib.ExitStack() as cleanup:
        network = Network(docker_network_kw={"labels": {"swarmai.test": label}}).create()
        cleanup.callback(network.remove)

        postgres = (_service(registry_images["postgres"], network, POSTGRES, label)
                    .with_envs(POSTGRES_USER="mlflow", POSTGRES_DB="mlflow",
                               POSTGRES_PASSWORD_FILE=f"{SECRETS}/{DB_SECRET}")
                    .with_volume_mapping(db_secret, f"{SECRETS}/{DB_SECRET}", "ro")
                    .with_tmpfs_mount("/var/lib/postgresql/data"))
        store = (_loopback(_service(registry_images["seaweedfs"], network, S3, label), S3_PORT)
                 .with_command(["server", "-dir=/data", "-master.volumeSizeLimitMB=1024",
                                "-volume.max=0", "-s3", f"-s3.port={S3_PORT}",
                                "-s3.config=/etc/swarmai/s3.json"])
                 .with_volume_mapping(identities, "/etc/swarmai/s3.json", "ro")
                 .with_tmpfs_mount("/data"))
        for container in (postgres, store):
            cleanup.callback(container.stop)
            container.start()

        def pg_ready() -> bool:
            probe = ["pg_isready", "-h", "127.0.0.1", "-U", "mlflow", "-d", "mlflow"]
            return postgres.exec(probe).exit_code == 0

        registry = Registry(
            tracking_uri="", s3_endpoint=f"127.0.0.1:{_published(store, S3_PORT)}",
            access_key=access, secret_key=secret, containers={POSTGRES: postgres, S3: store})
        _wait_until("postgres", pg_ready, READY_S[POSTGRES], postgres)
        _wait_until("seaweedfs S3", lambda: _s3_ready(registry.s3()), READY_S[S3], store)

        server = (_loopback(_service(registry_images["mlflow"], network, MLFLOW, label),
                            MLFLOW_PORT)
                  .with_envs(AWS_SHARED_CREDENTIALS_FILE=f"{SECRETS}/{S3_SECRET}",
                             PGPASSFILE="/etc/swarmai/pgpass",
                             MLFLOW_S3_ENDPOINT_URL=f"http://{S3}:{S3_PORT}",
                             AWS_REQUEST_CHECKSUM_CALCULATION="when_required",
                             AWS_RESPONSE_CHECKSUM_VALIDATION="when_required")
                  .with_volume_mapping(credentials, f"{SECRETS}/{S3_SECRET}", "ro")
                  .with_volume_mapping(pgpass, "/etc/swarmai/pgpass", "ro")
                  .with_command(["mlflow", "server", "--host", "0.0.0.0",
                                 "--port", str(MLFLOW_PORT),
                                 "--backend-store-uri", BACKEND_URI,
                                 "--artifacts-destination", f"s3://{BUCKET}/artifacts",
                                 "--allowed-hosts", ALLOWED_HOSTS, "--workers", "2"]))
        cleanup.callback(server.stop)
        server.start()
        tracking_uri = f"http://127.0.0.1:{_published(server, MLFLOW_PORT)}"
        _wait_until("mlflow", lambda: _http_ok(f"{tracking_uri}/health"), READY_S[MLFLOW],
                    server, postgres, store)

        for container in (postgres, store, server):  # nothing left behind in anonymous volumes
            wrapped = container.get_wrapped_container()
            wrapped.reload()
            mounts = wrapped.attrs["Mounts"]
            assert all(m["Type"] != "volume" for m in mounts), (container.image, mounts)
        yield replace(registry, tracking_uri=tracking_uri,
                      containers={POSTGRES: postgres, S3: store, MLFLOW: server})

    left = {"containers": [c.name for c in engine.containers.list(
                all=True, filters={"label": f"swarmai.test={label}"})],
            "networks": [n.name for n in engine.networks.list(
                filters={"label": f"swarmai.test={label}"})]}
    assert left == {"containers": [], "networks": []}, left


@pytest.fixture
def client(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    """An MLflow client on the published port that fails fast instead of retrying for minutes."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")  # loopback only: no calls home
    # As every client swarmai renders or runs: stream artifacts through MLflow.  MLflow 3.17
    # otherwise hands out presigned URLs on the store's in-stack name (http://s3:8333/...),
    # which resolves on the registry network only.
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", "false")
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "false")
    # mlflow resolves models:/ URIs with the *global* registry URI, whatever
    # download_artifacts is given (swarmai's loader works around it the same way).
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.tracking_uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", registry.tracking_uri)
    assert mlflow.get_registry_uri() == registry.tracking_uri, "set globally by another test"
    return MlflowClient(tracking_uri=registry.tracking_uri, registry_uri=registry.tracking_uri)


def test_model_lands_in_s3_and_resolves_by_alias(registry: Registry, client: MlflowClient,
                                                 tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    files = {"MLmodel": b"artifact_path: model\nflavors: {}\n",
             "weights.json": b'{"w": [0.25, -1.5], "b": 3.0}\n'}
    for name, data in files.items():
        (model / name).write_bytes(data)

    experiment = client.create_experiment("tc-registry")
    run = client.create_run(experiment)
    run_id = run.info.run_id
    client.log_artifacts(run_id, str(model), artifact_path="model")
    client.set_terminated(run_id)
    # Proxied artifacts: the client sees mlflow-artifacts:, only MLflow holds S3 keys.
    assert run.info.artifact_uri == f"mlflow-artifacts:/{experiment}/{run_id}/artifacts"

    client.create_registered_model(MODEL)
    version = client.create_model_version(MODEL, f"{run.info.artifact_uri}/model", run_id=run_id)
    client.set_registered_model_alias(MODEL, "production", version.version)
    resolved = client.get_model_version_by_alias(MODEL, "production")
    assert (resolved.version, resolved.run_id) == (version.version, run_id)

    downloaded = Path(download_artifacts(
        artifact_uri=f"models:/{MODEL}@production", dst_path=str(tmp_path / "download"),
        tracking_uri=registry.tracking_uri, registry_uri=registry.tracking_uri))
    got = {p.name: p.read_bytes() for p in downloaded.iterdir()}
    # mlflow adds a note of what the alias resolved to.
    meta = yaml.safe_load(got.pop("registered_model_meta", b"{}"))
    assert got == files
    assert meta == {"model_name": MODEL, "model_version": version.version}

    # The objects are really in the bucket, under --artifacts-destination.
    prefix = f"artifacts/{experiment}/{run_id}/artifacts/model/"
    s3 = registry.s3()
    listed = {o.object_name for o in s3.list_objects(BUCKET, prefix="artifacts/", recursive=True)}
    assert listed == {prefix + name for name in files}
    for name, data in files.items():
        response = s3.get_object(BUCKET, prefix + name)
        try:
            assert response.read() == data
        finally:
            response.close()
            response.release_conn()

    # And the registry is in Postgres, not in some SQLite file inside the container.
    assert registry.psql(
        "SELECT name || '@' || alias || '=' || version FROM registered_model_aliases"
    ) == f"{MODEL}@production={version.version}"
    assert registry.psql(
        f"SELECT source FROM model_versions WHERE name = '{MODEL}'"
    ) == f"{run.info.artifact_uri}/model"


@pytest.mark.parametrize("keys", ["wrong-secret", "unknown-key", "anonymous"])
def test_store_refuses_bad_s3_keys(registry: Registry, keys: str) -> None:
    good = registry.s3()
    key = f"probe/{keys}"
    good.put_object(BUCKET, key, io.BytesIO(b"secret"), 6)
    if keys == "wrong-secret":
        bad = registry.s3(secret_key=registry.secret_key[::-1] + "x")
        expected = {"SignatureDoesNotMatch"}
    elif keys == "unknown-key":
        bad = registry.s3(access_key="swarmainobody", secret_key=registry.secret_key)
        expected = {"InvalidAccessKeyId"}
    else:
        bad = registry.s3(anonymous=True)
        expected = {"AccessDenied"}
    try:
        attempts: list[Callable[[], object]] = [
            lambda: list(bad.list_objects(BUCKET, recursive=True)),
            lambda: bad.get_object(BUCKET, key).read(),
            lambda: bad.put_object(BUCKET, "probe/intruder", io.BytesIO(b"x"), 1),
            lambda: bad.remove_object(BUCKET, key),
        ]
        for attempt in attempts:
            with pytest.raises(S3Error) as refused:
                attempt()
            assert refused.value.code in expected, refused.value
        # Nothing the refused client did took effect.
        names = {o.object_name for o in good.list_objects(BUCKET, prefix="probe/")}
        assert names == {key}
        response = good.get_object(BUCKET, key)
        try:
            assert response.read() == b"secret"
        finally:
            response.close()
            response.release_conn()
    finally:
        good.remove_object(BUCKET, key)


def test_both_postgres_uri_spellings_reach_the_database(registry: Registry) -> None:
    """psycopg2 (what swarmai renders) and psycopg 3 (plain postgresql://) both work with pgpass."""
    code = (
        "import sqlalchemy, sys\n"
        "for uri in sys.argv[1:]:\n"
        "    engine = sqlalchemy.create_engine(uri)\n"
        "    with engine.connect() as c:\n"
        "        print(engine.dialect.driver, c.execute(sqlalchemy.text('SELECT 1')).scalar())\n")
    plain = BACKEND_URI.replace("postgresql+psycopg2://", "postgresql://")
    result = registry.containers[MLFLOW].exec(["python3", "-c", code, BACKEND_URI, plain])
    output = result.output.decode()
    assert result.exit_code == 0, output
    assert output.split() == ["psycopg2", "1", "psycopg", "1"], output
