"""The containers a backup and a restore run (:mod:`.tasks`), built without an engine.

Each database is copied with its own tool: ``pg_dump -Fc`` / ``pg_restore`` in
the stack's own Postgres image (the client matches the server's major), and
SQLite's online backup API in the MLflow image, which copies a consistent
image of the file while MLflow keeps it open.  The artifact bucket is mirrored
by :mod:`swarmai.incontainer.bucket_mirror` in the MLflow image, whose boto3 is
the client MLflow writes them with (swarmai's server image has no S3 client): its
source is handed to ``python3 -c``, as the entrypoints' scripts are inlined, since
the MLflow image carries no swarmai package.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from swarmai.lifecycle.pgpass import write_pgpass
from swarmai.lifecycle.tasks import HostMount, Task
from swarmai.render.naming import POSTGRES, POSTGRES_PORT, SECRETS_DIR, s3_endpoint
from swarmai.spec import Stack

SNAPSHOT = "/snapshot"  # where a task sees the snapshot folder
DUMP = "registry.dump"  # Postgres, custom format
SQLITE = "registry.sqlite"
ARTIFACTS = "artifacts"
ARTIFACT_INDEX = "artifacts.json"
POSTGRES_VERSION = "postgres-version"  # server_version_num, written by the dump task
WRONG_MAJOR = 3  # the restore task's exit code when the target's Postgres major differs
_MLFLOW_DB = "/var/lib/mlflow"

# The password reaches libpq through a private pgpass file built inside the
# container from the secret (swarmai.lifecycle.pgpass): never shell text, the
# environment or a command line.  $1: the secret's name, $2: the snapshot.
_PGPASS = (
    "set -eu\n"
    + write_pgpass(f'"{SECRETS_DIR}/$1"', f"{POSTGRES}:{POSTGRES_PORT}:mlflow:mlflow")
    + f'connect="-h {POSTGRES} -p {POSTGRES_PORT} -U mlflow -d mlflow"\n'
)
PG_DUMP = _PGPASS + f"""psql $connect -XtAc 'SHOW server_version_num' > "$2/{POSTGRES_VERSION}"
pg_dump -Fc $connect -f "$2/{DUMP}"
"""
# $3: the snapshot's major; checked before anything is changed.  One transaction:
# an interrupted or failed restore leaves the database as it was.
PG_RESTORE = _PGPASS + f"""found=$(psql $connect -XtAc 'SHOW server_version_num')
if [ "$((found / 10000))" != "$3" ]; then
  echo "the stack's PostgreSQL is major $((found / 10000)), the snapshot's $3" >&2
  exit {WRONG_MAJOR}
fi
pg_restore --clean --if-exists --no-owner --single-transaction --exit-on-error $connect \\
  "$2/{DUMP}"
"""
# SQLite's backup API copies page by page under the library's own locking, so
# the copy is consistent while MLflow writes; a restore copies *into* the live
# file, which MLflow holds open (replacing the file would leave it on the old one).
SQLITE_BACKUP = f"""import sqlite3, sys
source = sqlite3.connect("file:{_MLFLOW_DB}/mlflow.db?mode=ro", uri=True, timeout=60)
target = sqlite3.connect(sys.argv[1] + "/{SQLITE}")
source.backup(target)
target.close()
source.close()
"""
SQLITE_RESTORE = f"""import sqlite3, sys
source = sqlite3.connect("file:" + sys.argv[1] + "/{SQLITE}?mode=ro", uri=True)
live = sqlite3.connect("{_MLFLOW_DB}/mlflow.db", timeout=60)
source.backup(live)
live.close()
source.close()
"""


@dataclass(frozen=True)
class TaskImages:
    postgres: str
    mlflow: str  # also runs the bucket mirror (boto3)


@cache
def mirror_source() -> str:
    """The text of :mod:`swarmai.incontainer.bucket_mirror` (read, never imported here)."""
    return resources.files("swarmai.incontainer").joinpath("bucket_mirror.py").read_text(
        encoding="utf-8")


def caller() -> str:
    """This process's ``uid:gid``: the snapshot's files belong to the user who ran it."""
    return f"{os.getuid()}:{os.getgid()}"


def database_file(stack: Stack) -> str:
    return DUMP if stack.registry.backend_store == "postgres" else SQLITE


def dump_task(stack: Stack, images: TaskImages, folder: Path) -> Task:
    mount = (HostMount(folder, SNAPSHOT),)
    if stack.registry.backend_store == "postgres":
        secret = stack.registry.db_password_secret
        return Task("dumping the registry database", images.postgres,
                    ("sh", "-c", PG_DUMP, "sh", secret, SNAPSHOT), secrets=(secret,),
                    mounts=mount, user=caller())
    return Task("copying the registry database", images.mlflow,
                ("python3", "-c", SQLITE_BACKUP, SNAPSHOT), mounts=mount,
                volumes=(("mlflow-db", _MLFLOW_DB, True),), user=caller())


def load_task(stack: Stack, images: TaskImages, folder: Path, postgres_major: int | None,
              ) -> Task:
    mount = (HostMount(folder, SNAPSHOT, read_only=True),)
    if stack.registry.backend_store == "postgres":
        secret = stack.registry.db_password_secret
        return Task("restoring the registry database", images.postgres,
                    ("sh", "-c", PG_RESTORE, "sh", secret, SNAPSHOT, str(postgres_major)),
                    secrets=(secret,), mounts=mount, user=caller())
    # As root: the live file belongs to MLflow's user in the volume, not to the caller.
    return Task("restoring the registry database", images.mlflow,
                ("python3", "-c", SQLITE_RESTORE, SNAPSHOT), mounts=mount,
                volumes=(("mlflow-db", _MLFLOW_DB, False),), user="0:0")


def mirror_task(stack: Stack, images: TaskImages, folder: Path, direction: str) -> Task:
    """``download``: the bucket into ``folder``; ``upload``: back from it."""
    secret = stack.storage.credentials_secret
    command = ("python3", "-c", mirror_source(), direction,
               "--endpoint", s3_endpoint(stack), "--bucket", stack.storage.bucket,
               "--credentials", f"{SECRETS_DIR}/{secret}",
               "--dir", f"{SNAPSHOT}/{ARTIFACTS}", "--index", f"{SNAPSHOT}/{ARTIFACT_INDEX}")
    what = "mirroring the artifact bucket" if direction == "download" else \
        "uploading the artifacts"
    return Task(what, images.mlflow, command, secrets=(secret,),
                mounts=(HostMount(folder, SNAPSHOT, read_only=direction == "upload"),),
                user=caller())
