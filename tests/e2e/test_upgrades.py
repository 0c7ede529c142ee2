"""Switching a Postgres-backed Swarm stack's registry images, on the real engine.

Deployed with the ``--offline`` builds, the stack is switched to:

1. a stand-in for the default Postgres image, same major: it keeps working on the
   same data (the model pushed before the switch is served after it);
2. an image claiming PostgreSQL 16: ``upgrade-check`` says refused (exit 3), and
   deploy is refused with exit 2 before anything changes (same service images, same
   task IDs, same rendered files), with the way out in the message, also with
   ``--upgrade-registry``;
3. an MLflow image claiming the next release: refused until ``--upgrade-registry``,
   then deployed; MLflow's entrypoint ran ``mlflow db upgrade`` against Postgres
   (through its pgpass file) and the registry still holds the model.

Why stand-ins: nothing can be pulled here, so the real ``postgres:15.14-bookworm``
and ``ghcr.io/mlflow/mlflow:v3.17.2-full`` are not on this engine.  Each stand-in is
built ``FROM`` the offline image (the server binaries that really run) and carries
what swarmai reads from the image it stands for: the official Postgres image's
``PG_MAJOR`` environment variable and a tag in its style; a Postgres 16 claim as
``PG_MAJOR``/``POSTGRES_MAJOR`` (what the offline entrypoint checks against the
data directory); an MLflow release as swarmai's version label and, as a real next
release would, one schema migration past the offline release's newest (an empty
one), so that its database is really behind.  They are named
under ``e2eup/`` rather than under the real names, so that nobody else on this
shared engine finds a fake "official" image, and removed at the end.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from lifecycle import CHURN_ROWS, engine_snapshot, post, swarmai

from swarmai.engine import Engine

pytestmark = pytest.mark.e2e

NAME = "e2eup"
PORT = 18920
DEFAULT_PG = f"{NAME}/postgres:15.14-bookworm"
PG16 = f"{NAME}/postgres:16.6-bookworm"
NEXT_MLFLOW = f"{NAME}/mlflow:v3.18.0-full"


def _stack(directory: Path, images: dict[str, str]) -> Path:
    path = directory / f"{NAME}-{len(list(directory.glob('*.yaml')))}.yaml"
    listed = ", ".join(f"{key}: {ref}" for key, ref in images.items())
    path.write_text(f"""\
version: 1
name: {NAME}
gateway: {{port: {PORT}, tls: {{mode: "off"}}}}
network: {{ipvs: auto}}
storage: {{backend: seaweedfs, bucket: models, credentials_secret: {NAME}-s3}}
registry: {{backend_store: postgres, db_password_secret: {NAME}-db}}
{f"images: {{{listed}}}" if images else ""}
models:
  - name: churn
    runtime: fastapi
    model: models:/churn@production
    route: /churn
""")
    return path


# The next release's one migration: an empty step past the offline release's head.
NEXT_MIGRATION = """\
import importlib.util, pathlib
from alembic.script import ScriptDirectory
package = importlib.util.find_spec("mlflow").submodule_search_locations[0]
migrations = pathlib.Path(package) / "store" / "db_migrations"
head = ScriptDirectory(str(migrations)).get_current_head()
(migrations / "versions" / "e2eup0000001_next_release.py").write_text(
    f'revision = "e2eup0000001"\\ndown_revision = "{head}"\\n'
    "branch_labels = None\\ndepends_on = None\\n\\n"
    "def upgrade():\\n    pass\\n\\ndef downgrade():\\n    pass\\n")
"""


@pytest.fixture(scope="module")
def stand_ins(offline_images: dict[str, str], docker_cli: str,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The stand-in images (see the module's docstring), built in seconds each."""
    context = tmp_path_factory.mktemp("stand-ins")
    (context / "next_migration.py").write_text(NEXT_MIGRATION)
    dockerfiles = {
        DEFAULT_PG: f"FROM {offline_images['postgres']}\nENV PG_MAJOR=15\n",
        PG16: f"FROM {offline_images['postgres']}\nENV PG_MAJOR=16 POSTGRES_MAJOR=16\n",
        NEXT_MLFLOW: f"FROM {offline_images['mlflow']}\n"
                     "LABEL org.opencontainers.image.version=3.18.0\n"
                     "COPY next_migration.py /tmp/\n"
                     "RUN python3 /tmp/next_migration.py && rm /tmp/next_migration.py\n",
    }
    for tag, dockerfile in dockerfiles.items():
        (context / "Dockerfile").write_text(dockerfile)
        subprocess.run([docker_cli, "build", "-q", "-t", tag, str(context)],
                       text=True, check=True, capture_output=True)
    yield
    subprocess.run([docker_cli, "image", "rm", *dockerfiles], check=False, capture_output=True)


def _ours() -> dict[str, set[str]]:
    """What the engine holds of this stack (others run e2e stacks beside it)."""
    return {kind: {name for name in names if NAME in name}
            for kind, names in engine_snapshot().items()}


def _services() -> dict[str, str]:
    """Service -> image reference, of the stack's Swarm services."""
    api = Engine.from_env().api
    return {s["Spec"]["Name"]: s["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
            for s in api.services(filters={"label": f"com.docker.stack.namespace={NAME}"})}


def _running_tasks() -> set[str]:
    api = Engine.from_env().api
    services = [s["ID"] for s in api.services(
        filters={"label": f"com.docker.stack.namespace={NAME}"})]
    return {t["ID"] for t in api.tasks(filters={"service": services, "desired-state": "running"})}


def _mlflow_log(image: str) -> str:
    """What the running MLflow container of ``image`` wrote.

    By image: the task it replaced may still be shutting down when the deploy
    returns (its container runs until MLflow has stopped), as seen on a full run.
    """
    api = Engine.from_env().api
    listed = api.containers(filters={"label": f"com.docker.swarm.service.name={NAME}_mlflow"})
    running = [c for c in listed if c["Image"].split("@")[0] == image]
    assert len(running) == 1, listed
    return bytes(api.logs(running[0]["Id"], stdout=True, stderr=True)).decode()


def _mlflow_lives() -> list[tuple[str, datetime, datetime | None]]:
    """(image, started, finished or None) of every container the MLflow service ran."""
    api = Engine.from_env().api
    listed = api.containers(all=True, filters={
        "label": f"com.docker.swarm.service.name={NAME}_mlflow"})
    lives = []
    for container in listed:
        state = api.inspect_container(container["Id"])["State"]
        finished = None if state["Running"] else datetime.fromisoformat(state["FinishedAt"])
        lives.append((container["Image"].split("@")[0],
                      datetime.fromisoformat(state["StartedAt"]), finished))
    return lives


def _serves(models: dict[str, Any]) -> list[str]:
    """The churn model answers through the gateway; the registry's versions of it."""
    import pandas as pd

    status, body, _headers = post(f"http://127.0.0.1:{PORT}/churn/v1/predict",
                                  {"dataframe_records": CHURN_ROWS})
    assert status == 200
    assert body["predictions"] == models["churn"](pd.DataFrame(CHURN_ROWS))
    listed = swarmai("models", "list", str(models["stack"]), "--offline", "--output", "json")
    assert listed.returncode == 0, listed.stderr
    return [f"{v['name']}/{v['version']}" for v in json.loads(listed.stdout)]


def test_switching_registry_images(tmp_path: Path, stand_ins: None,
                                   example_models: dict[str, Any]) -> None:
    offline = _stack(tmp_path, {})
    state = ["--state-dir", str(tmp_path / "state")]
    swarmai("rm", str(offline), "--volumes")  # a previous run's leftovers, if any
    before = _ours()

    assert swarmai("deploy", str(offline), "--offline", *state).returncode == 1  # no model yet
    pushed = swarmai("models", "push", str(offline), "churn",
                     str(example_models["paths"]["churn"]), "--alias", "production",
                     "--offline")
    assert pushed.returncode == 0, pushed.stderr
    deployed = swarmai("deploy", str(offline), "--offline", *state)
    assert deployed.returncode == 0, deployed.stderr
    models = {**example_models, "stack": offline}
    assert _serves(models) == ["churn/1"]

    # 1. The default-named Postgres of the same major: it keeps working, same data.
    default = _stack(tmp_path, {"postgres": DEFAULT_PG})
    checked = swarmai("upgrade-check", str(default), "--offline")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "postgres: PostgreSQL 15 -> PostgreSQL 15" in checked.stdout
    assert "same major: the data directory is kept" in checked.stdout
    assert "mlflow: same image" in checked.stdout and "would go ahead" in checked.stdout
    switched = swarmai("deploy", str(default), "--offline", *state)
    assert switched.returncode == 0, switched.stderr
    assert _services()[f"{NAME}_postgres"] == DEFAULT_PG
    assert _serves(models) == ["churn/1"]

    # 2. Another Postgres major: refused before anything changes, the way out named.
    pg16 = _stack(tmp_path, {"postgres": PG16})
    checked = swarmai("upgrade-check", str(pg16), "--offline", "--output", "json")
    assert checked.returncode == 3, checked.stdout + checked.stderr
    verdicts = {v["service"]: v for v in json.loads(checked.stdout)["services"]}
    assert verdicts["postgres"]["effect"] == "refused"
    assert (verdicts["postgres"]["running"]["version"],
            verdicts["postgres"]["planned"]["version"]) == ("15", "16")
    images, tasks = _services(), _running_tasks()
    rendered = (tmp_path / "state" / "stack.yml").read_text()
    for flags in ([], ["--upgrade-registry"]):
        refused = swarmai("deploy", str(pg16), "--offline", *state, *flags)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "nothing was changed" in refused.stderr
        assert "PostgreSQL 15 -> PostgreSQL 16" in refused.stderr
        assert f"swarmai backup {pg16} DIR" in refused.stderr
        assert "the same images: and --offline as the last deploy" in refused.stderr
        assert "Traceback" not in refused.stderr
    assert (_services(), _running_tasks()) == (images, tasks)
    assert (tmp_path / "state" / "stack.yml").read_text() == rendered

    # 3. Another MLflow release: a schema migration, only with --upgrade-registry.
    mlflow = _stack(tmp_path, {"postgres": DEFAULT_PG, "mlflow": NEXT_MLFLOW})
    refused = swarmai("deploy", str(mlflow), "--offline", *state)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "MLflow 3.17.2 -> MLflow 3.18.0" in refused.stderr
    assert f"swarmai backup {mlflow} DIR" in refused.stderr
    assert "--upgrade-registry" in refused.stderr
    assert (_services(), _running_tasks()) == (images, tasks)
    upgraded = swarmai("deploy", str(mlflow), "--offline", "--upgrade-registry", *state)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "mlflow: MLflow 3.17.2 -> MLflow 3.18.0" in upgraded.stderr
    assert "mlflow: rolls stop-first this time" in upgraded.stderr
    assert _services()[f"{NAME}_mlflow"] == NEXT_MLFLOW
    # MLflow on Postgres rolls start-first, but not into a migration: every container
    # of the old release had stopped before the new release's started.
    lives = _mlflow_lives()
    old_ends = [end for image, _, end in lives if image != NEXT_MLFLOW]
    new_starts = [start for image, start, _ in lives
                  if image == NEXT_MLFLOW and start.year > 1]  # year 1: never started
    assert old_ends and new_starts and None not in old_ends, lives
    assert max(old_ends) <= min(new_starts), lives
    assert _serves(models) == ["churn/1"]
    # Its entrypoint found the database behind and ran `mlflow db upgrade` on it
    # (the server alone says nothing of the kind on an existing schema).
    log = _mlflow_log(NEXT_MLFLOW)
    assert "swarmai: the database schema is behind: mlflow db upgrade" in log, log
    assert "Updating database tables" in log, log

    removed = swarmai("rm", str(offline), "--volumes")
    assert removed.returncode == 0, removed.stderr
    assert _ours() == before
