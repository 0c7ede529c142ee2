"""`swarmai secrets rotate` on the real engine: a Postgres-backed registry on Swarm.

The registry is up (the first deploy stops at the empty registry) with one model
pushed -> the database password is rotated: Postgres refuses the old value and
takes the new one, MLflow answers reads and writes -> a rotation killed (SIGKILL)
after the services moved to NAME.next is finished by the next run -> the S3 keys
are rotated: the store runs with new keys and MLflow still writes artifacts ->
a later deploy, with the same stack file, serves the model through the gateway
(its server downloaded the artifacts from the store with the new keys) -> a
secret swarmai did not generate, or one the stack does not name, is refused
(exit 2) -> rm --volumes leaves the engine as found.

The values are read by the test itself, from the running containers' secret
files, and checked with psql in the database container: not with the code under
test.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lifecycle import engine_snapshot, swarmai

pytestmark = pytest.mark.e2e

NAME = "e2erot"
PORT = 18910
DB = f"{NAME}-db"
S3 = f"{NAME}-s3"

STACK = f"""\
version: 1
name: {NAME}
gateway: {{port: {PORT}, tls: {{mode: "off"}}}}
storage: {{backend: seaweedfs, bucket: models, credentials_secret: {S3}}}
registry: {{backend_store: postgres, db_password_secret: {DB}}}
models:
  - name: scorer
    runtime: fastapi
    model: models:/scorer@production
    route: /scorer
"""

MAKE_MODEL = """
import sys
import cloudpickle

value = float(sys.argv[2])

def predict(frame):
    return [value] * len(frame)

with open(sys.argv[1], "wb") as handle:
    cloudpickle.dump(predict, handle)
"""


def ours() -> dict[str, set[str]]:
    """What this module's stack has on the engine: other people's tests share it."""
    return {kind: {n for n in names if NAME in n} for kind, names in engine_snapshot().items()}


def docker(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], input=stdin, capture_output=True, text=True,
                          timeout=120, check=False)


def container_of(service: str) -> str:
    """The container of ``service``'s current task (a replaced one may still be stopping)."""
    tasks = docker("service", "ps", service, "-q", "--filter",
                   "desired-state=running").stdout.split()
    assert len(tasks) == 1, tasks
    found = docker("inspect", tasks[0], "--format", "{{.Status.ContainerStatus.ContainerID}}")
    assert found.returncode == 0 and found.stdout.strip(), found.stderr
    return found.stdout.strip()


def secret_file(service: str, secret: str) -> str:
    """What the running task of ``service`` reads as ``/run/secrets/<secret>``."""
    read = docker("exec", container_of(service), "cat", f"/run/secrets/{secret}")
    assert read.returncode == 0, read.stderr
    return read.stdout


def database_takes(password: str, container: str | None = None) -> bool:
    """Whether Postgres (in ``container``, default the stack's Swarm task) accepts
    ``password`` for mlflow over TCP (scram: not the trusted local socket); the
    password goes through stdin into a pgpass file."""
    script = ("umask 077; printf '*:*:*:*:%s\\n' \"$(cat)\" > /tmp/check; PGPASSFILE=/tmp/check "
              "psql -h 127.0.0.1 -U mlflow -d mlflow -w -tAc 'select 1'; code=$?; "
              "rm -f /tmp/check; exit $code")
    checked = docker("exec", "-i", container or container_of(f"{NAME}_postgres"), "sh", "-c",
                     script, stdin=password)
    if checked.returncode != 0:
        assert "password authentication failed" in checked.stderr, checked.stderr
    return checked.returncode == 0


def secret_labels(name: str) -> dict[str, str] | None:
    found = docker("secret", "inspect", name, "--format", "{{json .Spec.Labels}}")
    return json.loads(found.stdout) if found.returncode == 0 else None


def registry_answers(stack: Path, *target: str) -> dict[str, list[str]]:
    """Each version of the model -> its aliases, as MLflow lists them (a read through the
    database)."""
    listed = swarmai("models", "list", str(stack), "--offline", "--output", "json", *target)
    assert listed.returncode == 0, listed.stderr
    return {v["version"]: sorted(v["aliases"]) for v in json.loads(listed.stdout)
            if v["name"] == "scorer"}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory,
             offline_images: dict[str, str]) -> Iterator[dict[str, Any]]:
    """The registry of the stack running (deploy stopped at the empty registry), with
    version 1 of the model pushed as production."""
    root = tmp_path_factory.mktemp("rotation")
    stack = root / f"{NAME}.yaml"
    stack.write_text(STACK)
    state = ["--state-dir", str(root / "state")]
    swarmai("rm", str(stack), "--volumes")  # a previous run's leftovers, if any
    before = ours()
    model = root / "model.pkl"
    subprocess.run([sys.executable, "-c", MAKE_MODEL, str(model), "7"], check=True)
    first = swarmai("deploy", str(stack), "--offline", *state)
    # The registry is empty: the deploy stops there, with MLflow up.
    assert first.returncode == 1 and "not in its registry yet" in first.stderr, first.stderr
    pushed = swarmai("models", "push", str(stack), "scorer", str(model), "--alias",
                     "production", "--offline")
    assert pushed.returncode == 0, pushed.stderr
    try:
        yield {"stack": stack, "state": state, "model": model}
    finally:
        removed = swarmai("rm", str(stack), "--volumes")
        assert removed.returncode == 0, removed.stderr
        assert ours() == before


def test_rotating_the_database_password_keeps_mlflow_serving(registry: dict[str, Any]) -> None:
    stack = registry["stack"]
    old = secret_file(f"{NAME}_postgres", DB)
    assert database_takes(old)
    rotated = swarmai("secrets", "rotate", str(stack), DB, *registry["state"])
    assert rotated.returncode == 0, rotated.stderr
    new = secret_file(f"{NAME}_mlflow", DB)
    assert new != old
    assert secret_file(f"{NAME}_postgres", DB) == new
    assert not database_takes(old)
    assert database_takes(new)
    # The secret keeps its name and its generated label; the staging one is gone.
    assert secret_labels(DB) == {"swarmai.generated": "true", "swarmai.stack": NAME}
    assert secret_labels(f"{DB}.next") is None
    # MLflow reads and writes through the database with the new password.
    pushed = swarmai("models", "push", str(stack), "scorer", str(registry["model"]),
                     "--alias", "staging", "--offline")
    assert pushed.returncode == 0, pushed.stderr
    assert registry_answers(stack) == {"1": ["production", "staging"]}


def test_a_killed_rotation_is_finished_by_the_next_run(registry: dict[str, Any]) -> None:
    stack = registry["stack"]
    old = secret_file(f"{NAME}_postgres", DB)
    running = subprocess.Popen(
        [sys.executable, "-c", "from swarmai.cli import main; main()", "secrets", "rotate",
         str(stack), DB, *registry["state"]], stderr=subprocess.PIPE, text=True)
    assert running.stderr is not None
    seen = []
    for line in running.stderr:  # killed once the services run on NAME.next
        seen.append(line)
        if f"onto {DB}.next" in line:
            running.send_signal(signal.SIGKILL)
            break
    running.wait(timeout=60)
    assert running.returncode == -signal.SIGKILL, "".join(seen)
    assert secret_labels(f"{DB}.next") is not None
    again = swarmai("secrets", "rotate", str(stack), DB, *registry["state"])
    assert again.returncode == 0, again.stderr
    assert secret_labels(f"{DB}.next") is None
    new = secret_file(f"{NAME}_mlflow", DB)
    assert new != old
    assert not database_takes(old)
    assert database_takes(new)
    assert registry_answers(stack) == {"1": ["production", "staging"]}


def test_rotated_s3_keys_serve_artifacts_and_a_later_deploy(registry: dict[str, Any]) -> None:
    stack = registry["stack"]
    old = secret_file(f"{NAME}_s3", S3)
    rotated = swarmai("secrets", "rotate", str(stack), S3, *registry["state"])
    assert rotated.returncode == 0, rotated.stderr
    new = secret_file(f"{NAME}_s3", S3)
    assert new != old
    assert secret_file(f"{NAME}_mlflow", S3) == new
    # A new version's artifacts written through MLflow to the store, with the new keys.
    model = registry["model"].with_name("model-2.pkl")
    subprocess.run([sys.executable, "-c", MAKE_MODEL, str(model), "8"], check=True)
    pushed = swarmai("models", "push", str(stack), "scorer", str(model), "--alias",
                     "production", "--offline")
    assert pushed.returncode == 0, pushed.stderr
    assert registry_answers(stack) == {"1": ["staging"], "2": ["production"]}
    # The same stack file deploys: the secret names are the ones it renders.
    deployed = swarmai("deploy", str(stack), "--offline", *registry["state"])
    assert deployed.returncode == 0, deployed.stderr
    request = urllib.request.Request(
        f"http://127.0.0.1:{PORT}/scorer/v1/predict",
        data=json.dumps({"dataframe_records": [{"x": 1.0}]}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.load(response)["predictions"] == [8.0]
        assert response.headers["X-Model-Version"] == "2"


def test_secrets_it_did_not_generate_are_refused(registry: dict[str, Any],
                                                 tmp_path: Path) -> None:
    unknown = swarmai("secrets", "rotate", str(registry["stack"]), "nobody-s-secret")
    assert unknown.returncode == 2, unknown.stderr
    assert f"{DB} (registry.db_password_secret)" in unknown.stderr
    mine = f"{NAME}-mine-{int(time.time())}"
    created = docker("secret", "create", mine, "-", stdin="a value of the user's own")
    assert created.returncode == 0, created.stderr
    try:
        other = tmp_path / "other.yaml"
        other.write_text(STACK.replace(f"db_password_secret: {DB}", f"db_password_secret: {mine}"))
        refused = swarmai("secrets", "rotate", str(other), mine)
        assert refused.returncode == 2, refused.stderr
        assert "not generated by swarmai" in refused.stderr
        assert secret_labels(f"{mine}.next") is None
    finally:
        docker("secret", "rm", mine)
