#!/bin/sh
# swarmai: start the MLflow tracking server with credentials from Docker secrets.
#
# No secret value appears in the service's environment, labels or command line:
# boto3 reads the S3 keys from the secret file itself (an AWS shared-credentials
# file), and the database password reaches libpq through a private pgpass file.
# Before MLflow starts, it waits for its database and S3 store, and creates the
# artifact bucket when missing, so the first deploy needs no separate bootstrap
# step, services may start in any order, and a re-run changes nothing.
#
# Then it brings the database's schema to this MLflow release (`mlflow db
# upgrade`, only when another release made it: schema_state.py), so
# another release starts on its own schema instead of refusing an out-of-date
# one.  There is no way back from a migration but a backup: the host-side
# guard (swarmai/lifecycle/upgrades.py) refuses to deploy another release over
# a running registry until --upgrade-registry says a backup was taken.
set -eu

export AWS_SHARED_CREDENTIALS_FILE="/run/secrets/${SWARMAI_S3_SECRET}"
if [ -n "${SWARMAI_DB_SECRET:-}" ]; then
  # pgpass format: host:port:db:user:password, with ':' and '\' escaped.  sed
  # writes the line from the secret file straight into the private file, so the
  # password is never shell text (swarmai/lifecycle/pgpass.py does the same).
  (umask 077; sed -e 's/\\/\\\\/g; s/:/\\:/g' -e "s/^/${SWARMAI_DB_HOST}:5432:mlflow:mlflow:/" \
    "/run/secrets/${SWARMAI_DB_SECRET}" > /tmp/pgpass)
  export PGPASSFILE=/tmp/pgpass
fi

python3 - <<'PY'
import os
import socket
import sys
import time

import boto3
from botocore.exceptions import BotoCoreError, ClientError

# Wait for the database first: MLflow exits at once when it cannot migrate it.
db_host = os.environ.get("SWARMAI_DB_HOST")
deadline = time.monotonic() + 120
while db_host:
    try:
        socket.create_connection((db_host, 5432), timeout=2).close()
        break
    except OSError as error:
        if time.monotonic() > deadline:
            sys.exit(f"swarmai: database {db_host}:5432 not reachable after 120 s: {error}")
        time.sleep(1)

bucket = os.environ["SWARMAI_BUCKET"]
s3 = boto3.client("s3", endpoint_url=os.environ["MLFLOW_S3_ENDPOINT_URL"])
deadline = time.monotonic() + 120
while True:
    try:
        s3.head_bucket(Bucket=bucket)
        print(f"swarmai: bucket {bucket} exists", flush=True)
        break
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchBucket", "NotFound"):
            s3.create_bucket(Bucket=bucket)
            print(f"swarmai: created bucket {bucket}", flush=True)
            break
        last = f"{code}: {error}"
    except BotoCoreError as error:
        last = str(error)
    if time.monotonic() > deadline:
        sys.exit(f"swarmai: S3 store not ready after 120 s: {last}")
    time.sleep(2)
PY

# The schema: `mlflow server` creates it in a fresh database; another release's
# is brought to this one by `mlflow db upgrade`, run only then, since importing
# mlflow costs seconds on every start.  When the check itself fails, upgrade:
# it is a no-op on a current schema.  The URI names no password (libpq reads
# it from $PGPASSFILE).
schema=$(python3 - <<'PY' || echo unknown
import importlib.util
import os
import pathlib
import re

import sqlalchemy

package = importlib.util.find_spec("mlflow").submodule_search_locations[0]
versions = pathlib.Path(package) / "store" / "db_migrations" / "versions"
revisions, parents = set(), set()
for path in versions.glob("*.py"):
    text = path.read_text(encoding="utf-8")
    revision = re.search(r'^revision = "(\w+)"', text, re.MULTILINE)
    if revision:
        revisions.add(revision.group(1))
        parents.update(re.findall(r'"(\w+)"', (re.search(
            r"^down_revision = (.*)$", text, re.MULTILINE) or [None, ""])[1]))
heads = revisions - parents

engine = sqlalchemy.create_engine(os.environ["SWARMAI_BACKEND_STORE_URI"])
with engine.connect() as connection:
    if not sqlalchemy.inspect(connection).has_table("alembic_version"):
        print("fresh")
    else:
        found = {row[0] for row in connection.execute(
            sqlalchemy.text("SELECT version_num FROM alembic_version"))}
        print("current" if found and found <= heads else "behind")
PY
)
if [ "$schema" != "fresh" ] && [ "$schema" != "current" ]; then
  echo "swarmai: the database schema is ${schema}: mlflow db upgrade" >&2
  mlflow db upgrade "${SWARMAI_BACKEND_STORE_URI}"
fi

exec mlflow server \
  --host 0.0.0.0 --port "${SWARMAI_MLFLOW_PORT}" \
  --backend-store-uri "${SWARMAI_BACKEND_STORE_URI}" \
  --artifacts-destination "s3://${SWARMAI_BUCKET}/artifacts" \
  --allowed-hosts "${SWARMAI_ALLOWED_HOSTS}" \
  --workers "${SWARMAI_MLFLOW_WORKERS:-2}"
