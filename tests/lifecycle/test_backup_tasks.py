"""The containers backup and restore run, as each target would start them: no engine."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from swarmai.lifecycle import backup_tasks
from swarmai.lifecycle.backup_tasks import TaskImages, dump_task, load_task, mirror_task
from swarmai.lifecycle.tasks import compose_run_args, missing_secret_files, swarm_job_args
from swarmai.spec import Stack, load_stack

IMAGES = TaskImages(postgres="pg:15", mlflow="mlflow:3")


def stack(tmp_path: Path, store: str = "postgres") -> Stack:
    registry = ("{backend_store: postgres, db_password_secret: demo-db}" if store == "postgres"
                else "{backend_store: sqlite}")
    path = tmp_path / "demo.yaml"
    path.write_text(f"""version: 1
name: demo
storage: {{backend: seaweedfs, bucket: models, credentials_secret: demo-s3}}
registry: {registry}
models:
  - name: iris
    runtime: fastapi
    model: models:/iris@production
""")
    return load_stack(path, "swarm")


def test_postgres_dump_runs_in_the_stacks_postgres_image_with_only_its_secret(
        tmp_path: Path) -> None:
    task = dump_task(stack(tmp_path), IMAGES, tmp_path)
    assert task.image == "pg:15" and task.secrets == ("demo-db",)
    assert task.command[:2] == ("sh", "-c") and task.command[3:] == ("sh", "demo-db", "/snapshot")
    assert "pg_dump -Fc" in task.command[2] and "PGPASSFILE" in task.command[2]
    assert task.user == backup_tasks.caller()  # the snapshot's files are the caller's
    mounts, access = swarm_job_args(stack(tmp_path), task)
    assert access.networks == ("demo_registry",) and access.secrets == ("demo-db",)
    assert [(m.source, m.target, m.read_only, m.volume) for m in mounts] == [
        (str(tmp_path.resolve()), "/snapshot", False, False)]


def test_the_password_never_reaches_the_command_line_or_environment(tmp_path: Path) -> None:
    for task in (dump_task(stack(tmp_path), IMAGES, tmp_path),
                 load_task(stack(tmp_path), IMAGES, tmp_path, 15)):
        assert all("password" not in part.lower() for part in task.command[3:])
        assert "/run/secrets/$1" in task.command[2]


def test_pgpass_escapes_colons_and_backslashes(tmp_path: Path) -> None:
    script = (backup_tasks._PGPASS.replace("/run/secrets", str(tmp_path))
              .replace("/tmp/pgpass", str(tmp_path / "pgpass")) + 'cat "$PGPASSFILE"\n')
    (tmp_path / "db").write_text("a:b\\c")
    shown = subprocess.run(["sh", "-c", script, "sh", "db"], capture_output=True, text=True,
                           check=True).stdout
    # As the secret holds it: a value without a newline gives a line without one
    # (libpq reads the last line either way).
    assert shown == "postgres:5432:mlflow:mlflow:a\\:b\\\\c"


def test_restore_checks_the_postgres_major_before_it_loads(tmp_path: Path) -> None:
    task = load_task(stack(tmp_path), IMAGES, tmp_path, 15)
    script = task.command[2]
    assert task.command[-1] == "15"
    assert script.index(f"exit {backup_tasks.WRONG_MAJOR}") < script.index("pg_restore")
    assert "--single-transaction" in script and "--clean --if-exists --no-owner" in script
    assert task.mounts[0].read_only


def test_sqlite_copies_with_the_volume_mounted_read_only_and_restores_into_it(
        tmp_path: Path) -> None:
    sqlite = stack(tmp_path, "sqlite")
    dump, load = dump_task(sqlite, IMAGES, tmp_path), load_task(sqlite, IMAGES, tmp_path, None)
    assert dump.image == load.image == "mlflow:3" and not dump.secrets
    assert dump.volumes == (("mlflow-db", "/var/lib/mlflow", True),)
    assert load.volumes == (("mlflow-db", "/var/lib/mlflow", False),)
    assert ".backup(" in dump.command[2] and "source.backup(live)" in load.command[2]
    mounts, _ = swarm_job_args(sqlite, dump)
    assert (mounts[1].source, mounts[1].volume, mounts[1].read_only) == (
        "demo_mlflow-db", True, True)


def test_compose_mounts_the_secret_files_where_swarm_puts_secrets(tmp_path: Path) -> None:
    task = mirror_task(stack(tmp_path), IMAGES, tmp_path / "snap", "upload")
    state = tmp_path / "state"
    assert missing_secret_files(task, state) == ["demo-s3"]
    (state / "secrets").mkdir(parents=True)
    (state / "secrets" / "demo-s3").write_text("[default]\n")
    assert missing_secret_files(task, state) == []
    volumes = compose_run_args(stack(tmp_path), task, state)
    assert volumes == [(str((tmp_path / "snap").resolve()), "/snapshot", "ro"),
                       (str((state / "secrets" / "demo-s3").resolve()),
                        "/run/secrets/demo-s3", "ro")]
    assert "--credentials" in task.command and "/run/secrets/demo-s3" in task.command
    assert task.command[task.command.index("--endpoint") + 1] == "http://s3:8333"


@pytest.mark.parametrize("direction", ["download", "upload"])
def test_the_mirror_runs_in_the_mlflow_image_from_its_source(tmp_path: Path,
                                                             direction: str) -> None:
    from swarmai.incontainer import bucket_mirror

    task = mirror_task(stack(tmp_path), IMAGES, tmp_path, direction)
    assert task.image == "mlflow:3" and task.command[:2] == ("python3", "-c")
    assert task.command[2] == Path(bucket_mirror.__file__).read_text()
    assert "import swarmai" not in task.command[2] and "from swarmai" not in task.command[2]
    assert task.command[3] == direction
    assert task.mounts[0].read_only == (direction == "upload")
