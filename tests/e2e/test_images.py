"""`swarmai images build --offline` against the real engine, and what each image can do.

The first build is cold on a fresh machine (several minutes: Debian, PyPI);
the second must find every tag present and build nothing.  Each image then
runs what swarmai's stacks run in it: the binaries and their versions, the
Postgres contract (password file, network auth, clean stop), and the registry
trio (SeaweedFS, Postgres, MLflow) started through swarmai's own entrypoint
scripts, as the rendered stack starts them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from python_on_whales import Container, DockerClient
from python_on_whales.exceptions import DockerException

from swarmai import __version__
from swarmai.engine import Engine
from swarmai.images import BuildResult, build_images, image_tags
from swarmai.render.scripts import script

pytestmark = pytest.mark.e2e

LABEL = {"swarmai.test": "images"}


@dataclass(frozen=True)
class Builds:
    first: list[BuildResult]
    first_s: float
    second: list[BuildResult]
    second_s: float

    @property
    def tags(self) -> dict[str, str]:
        return {result.key: result.tag for result in self.second}


@pytest.fixture(scope="module")
def docker(docker_cli: str) -> DockerClient:
    return DockerClient(client_call=[docker_cli])


@pytest.fixture(scope="module")
def builds(docker: DockerClient) -> Builds:
    """Build every image (cold on a fresh machine), then once more with nothing changed."""
    engine = Engine.from_env()
    started = time.monotonic()
    first = build_images(engine, offline=True, progress=_status)
    first_s = time.monotonic() - started
    started = time.monotonic()
    second = build_images(engine, offline=True, progress=_status)
    second_s = time.monotonic() - started
    for result in first:
        verb = "built" if result.built else "present"
        print(f"images: {result.tag}: {verb} in {result.seconds:.1f} s")
    print(f"images: first build {first_s:.1f} s, second (no change) {second_s:.1f} s")
    return Builds(first, first_s, second, second_s)


def _status(line: str) -> None:
    if not line.startswith(" "):
        print(line, flush=True)


@pytest.fixture
def network(docker: DockerClient) -> Iterator[str]:
    name = f"swarmai-images-test-{uuid.uuid4().hex[:8]}"
    docker.network.create(name, labels=LABEL)
    try:
        yield name
    finally:
        docker.network.remove(name)


@pytest.fixture
def start(docker: DockerClient) -> Iterator[Callable[..., Container]]:
    """Start detached containers for one test; force-remove them (and their volumes) after."""
    started: list[Container] = []

    def run(image: str, command: list[str] | None = None, **options: Any) -> Container:
        name = f"swarmai-images-test-{uuid.uuid4().hex[:8]}"
        container = docker.run(image, command or [], detach=True, name=name, labels=LABEL,
                               pull="never", **options)
        assert isinstance(container, Container)
        started.append(container)
        return container

    yield run
    for container in reversed(started):
        docker.container.remove(container, force=True, volumes=True)


def wait_until(check: Callable[[], object], what: str, timeout_s: float = 90,
               container: Container | None = None) -> None:
    """Poll ``check`` until it neither fails nor returns False; stop if ``container`` exits."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            if check() is not False:
                return
        except DockerException as error:
            last = (error.stderr or "").strip()[-300:]
        if container is not None:
            container.reload()
            if not container.state.running:
                logs = container.logs()[-3000:]
                pytest.fail(f"{what}: {container.name} exited "
                            f"({container.state.exit_code}):\n{logs}")
        time.sleep(1)
    pytest.fail(f"{what} not within {timeout_s:.0f} s: {last}")


def run_once(docker: DockerClient, image: str, command: list[str], **options: Any) -> str:
    return str(docker.run(image, command, remove=True, pull="never", **options))


# --- the build itself -------------------------------------------------------


def test_every_image_is_built_in_dependency_order(builds: Builds) -> None:
    keys = [result.key for result in builds.first]
    assert keys[0] == "base"
    assert set(keys) == {"base", "traefik", "seaweedfs", "mlflow", "postgres", "torchserve",
                         "fastapi", "model-sync", "engine-proxy"}


def test_a_second_build_with_nothing_changed_builds_nothing_in_seconds(builds: Builds) -> None:
    assert [r.tag for r in builds.second] == [r.tag for r in builds.first]
    assert not any(result.built for result in builds.second)
    assert builds.second_s < 15, f"no-op build took {builds.second_s:.1f} s"


def test_image_tags_names_the_images_that_were_built(builds: Builds, docker: DockerClient
                                                     ) -> None:
    tags = image_tags(offline=True)
    assert tags == {key: tag for key, tag in builds.tags.items() if key != "base"}
    for tag in tags.values():
        assert docker.image.exists(tag)
    assert docker.image.exists(f"swarmai/server:{__version__}")  # the spec's default name


# --- gateway and stores -------------------------------------------------------


def test_traefik_is_the_real_binary_at_the_pinned_version(builds: Builds, docker: DockerClient
                                                         ) -> None:
    image = builds.tags["traefik"]
    assert "3.7.15" in run_once(docker, image, ["traefik", "version"])
    # The official image's entrypoint contract: a bare subcommand goes to traefik.
    assert "3.7.15" in run_once(docker, image, ["version"])


def test_weed_is_the_real_binary_at_the_pinned_version(builds: Builds, docker: DockerClient
                                                      ) -> None:
    image = builds.tags["seaweedfs"]
    assert "4.48" in run_once(docker, image, ["weed", "version"])
    which = "for tool in sed head tr wget; do command -v $tool; done"
    tools = run_once(docker, image, ["sh", "-c", which])
    assert len(tools.split()) == 4


def test_mlflow_has_its_s3_and_postgres_clients(builds: Builds, docker: DockerClient) -> None:
    image = builds.tags["mlflow"]
    run_once(docker, image, ["python3", "-c", "import mlflow, boto3, psycopg2, psycopg"])
    assert "3.17.2" in run_once(docker, image, ["mlflow", "--version"])


# --- postgres: the official image's contract ----------------------------------


def test_postgres_takes_its_password_from_a_file_and_requires_it_on_the_network(
    builds: Builds, docker: DockerClient, network: str, start: Callable[..., Container],
    tmp_path: Path,
) -> None:
    image = builds.tags["postgres"]
    password = "pa:ss\\word with spaces"
    secret = tmp_path / "db-password"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    db = start(image, envs={"POSTGRES_USER": "mlflow", "POSTGRES_DB": "mlflow",
                            "POSTGRES_PASSWORD_FILE": "/run/secrets/db"},
               volumes=[(str(secret), "/run/secrets/db", "ro")], networks=[network])
    ready = ["pg_isready", "-U", "mlflow", "-d", "mlflow", "-h", "127.0.0.1"]
    wait_until(lambda: docker.container.execute(db, ready), "pg_isready", container=db)

    query = ["psql", "-h", db.name, "-U", "mlflow", "-d", "mlflow", "-tAc",
             "select current_user || '@' || current_database()"]
    out = run_once(docker, image, query, networks=[network], envs={"PGPASSWORD": password})
    assert out.strip() == "mlflow@mlflow"
    with pytest.raises(DockerException) as refused:
        run_once(docker, image, query, networks=[network], envs={"PGPASSWORD": "wrong"})
    assert refused.value.return_code == 2  # psql: could not connect (authentication failed)

    docker.container.stop(db, time=30)
    db.reload()
    assert db.state.exit_code == 0
    assert "database system is shut down" in docker.container.logs(db)
    # A restart keeps the data: no second initdb.
    docker.container.start(db)
    wait_until(lambda: docker.container.execute(db, ready), "pg_isready after a restart")
    assert docker.container.logs(db).count("created cluster") == 1


# --- the registry trio, started the way the rendered stack starts it -----------


def test_mlflow_runs_on_postgres_and_seaweedfs_through_swarmais_entrypoints(
    builds: Builds, docker: DockerClient, network: str, start: Callable[..., Container],
    tmp_path: Path,
) -> None:
    creds = tmp_path / "s3-creds"
    creds.write_text("[default]\naws_access_key_id = swarmaitest\n"
                     "aws_secret_access_key = Zq8vK2mW9xLp4RtY\n")
    db_password = tmp_path / "db-password"
    db_password.write_text("db:pass\\word")
    secrets = [(str(creds), "/run/secrets/s3-creds", "ro"),
               (str(db_password), "/run/secrets/db-password", "ro")]
    # The entrypoints as a rendered stack mounts them (includes inlined).
    scripts = []
    for name in ("s3-entrypoint.sh", "mlflow-entrypoint.sh"):
        (tmp_path / name).write_text(script(name))
        scripts.append((str(tmp_path / name), f"/etc/swarmai/{name}", "ro"))

    s3 = start(builds.tags["seaweedfs"], ["/etc/swarmai/s3-entrypoint.sh"], entrypoint="/bin/sh",
               envs={"SWARMAI_S3_BACKEND": "seaweedfs", "SWARMAI_S3_SECRET": "s3-creds"},
               volumes=[*secrets, *scripts], networks=[network], network_aliases=["s3"])
    start(builds.tags["postgres"], networks=[network], network_aliases=["postgres"],
          envs={"POSTGRES_USER": "mlflow", "POSTGRES_DB": "mlflow",
                "POSTGRES_PASSWORD_FILE": "/run/secrets/db-password"}, volumes=secrets)
    mlflow = start(builds.tags["mlflow"], ["/etc/swarmai/mlflow-entrypoint.sh"],
                   entrypoint="/bin/sh", envs=MLFLOW_ENV, volumes=[*secrets, *scripts],
                   networks=[network])

    # The healthchecks swarmai renders for these services.
    s3_health = ["sh", "-c", "wget -q -O /dev/null http://127.0.0.1:8333/healthz || exit 1"]
    wait_until(lambda: docker.container.execute(s3, s3_health), "SeaweedFS /healthz",
               container=s3)
    mlflow_health = ["python3", "-c", "import urllib.request; "
                     "urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=4)"]
    wait_until(lambda: docker.container.execute(mlflow, mlflow_health), "MLflow /health",
               timeout_s=180, container=mlflow)
    assert "created bucket mlflow" in docker.container.logs(mlflow)

    out = docker.container.execute(mlflow, ["python3", "-c", ROUND_TRIP])
    assert str(out).strip().endswith("artifact round trip ok")


MLFLOW_ENV = {
    "SWARMAI_S3_SECRET": "s3-creds",
    "SWARMAI_BUCKET": "mlflow",
    "SWARMAI_MLFLOW_PORT": "5000",
    "SWARMAI_ALLOWED_HOSTS": "localhost,localhost:*,127.0.0.1,127.0.0.1:*",
    "SWARMAI_BACKEND_STORE_URI": "postgresql://mlflow@postgres:5432/mlflow",
    "SWARMAI_DB_SECRET": "db-password",
    "SWARMAI_DB_HOST": "postgres",
    "SWARMAI_MLFLOW_WORKERS": "1",
    "MLFLOW_S3_ENDPOINT_URL": "http://s3:8333",
    "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
    "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
}

# Inside the MLflow container: an experiment in Postgres, an artifact through
# MLflow's proxy into SeaweedFS, and the same bytes back.
ROUND_TRIP = """
import json, urllib.request as r
base = "http://127.0.0.1:5000"
def call(method, path, data=None, headers=None):
    req = r.Request(base + path, data=data, method=method, headers=headers or {})
    return r.urlopen(req, timeout=30).read()
body = json.dumps({"name": "images-e2e"}).encode()
call("POST", "/api/2.0/mlflow/experiments/create", body, {"Content-Type": "application/json"})
call("PUT", "/api/2.0/mlflow-artifacts/artifacts/e2e/hello.txt", b"hello seaweed")
assert call("GET", "/api/2.0/mlflow-artifacts/artifacts/e2e/hello.txt") == b"hello seaweed"
print("artifact round trip ok")
"""


# --- model runtimes ----------------------------------------------------------------


def test_torchserve_is_the_real_one_on_java_17_with_cpu_torch(builds: Builds,
                                                              docker: DockerClient) -> None:
    image = builds.tags["torchserve"]
    assert "TorchServe Version is 0.12.0" in run_once(docker, image, ["torchserve", "--version"])
    assert "--model-name" in run_once(docker, image, ["torch-model-archiver", "--help"])
    versions = run_once(docker, image, ["sh", "-c", "java -version 2>&1; python3 -c \""
                                        "import torch, ts.model_service_worker; "
                                        "print(torch.__version__, torch.version.cuda)\""])
    assert 'version "17.' in versions
    assert "2.13.0+cpu None" in versions
    # The official image's user; no model-store directory to hand an empty store
    # volume its owner (model-sync writes the store, see the Dockerfile).
    assert run_once(docker, image, ["id", "-u"]).strip() == "1000"
    assert run_once(docker, image, ["sh", "-c", "test -e model-store || echo absent"]).strip() \
        == "absent"


# --- swarmai's own images -------------------------------------------------------


def test_the_server_image_runs_swarmai_as_a_non_root_user(builds: Builds, docker: DockerClient
                                                          ) -> None:
    image = builds.tags["fastapi"]
    check = ("import os, swarmai.incontainer.server, sklearn, cloudpickle; "
             "open('/var/cache/swarmai/models/probe', 'w').write('x'); print(os.getuid())")
    assert run_once(docker, image, ["python", "-c", check]).strip() != "0"
    config = docker.image.inspect(image).config
    assert config.cmd == ["python", "-m", "swarmai.incontainer.server"]
    assert "8000/tcp" in (config.exposed_ports or {})


def test_the_model_sync_image_has_the_archiver_and_not_the_servers_packages(
        builds: Builds, docker: DockerClient) -> None:
    image = builds.tags["model-sync"]
    assert "--model-name" in run_once(docker, image, ["torch-model-archiver", "--help"])
    probe = ("import importlib.util as u, os, swarmai.incontainer.sync.runner, mlflow.artifacts; "
             "print(os.getuid(), [m for m in ('numpy', 'pandas', 'sklearn', 'uvloop') "
             "if u.find_spec(m)])")
    out = run_once(docker, image, ["sh", "-c", f"touch /store/probe && python -c \"{probe}\""])
    assert out.split() == ["10001", "[]"], out
    assert docker.image.inspect(image).config.cmd == ["python", "-m", "swarmai.incontainer.sync"]
    sizes = {key: docker.image.inspect(builds.tags[key]).size for key in ("model-sync", "fastapi")}
    assert sizes["model-sync"] < sizes["fastapi"] / 2, sizes
