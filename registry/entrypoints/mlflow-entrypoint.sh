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
# swarmai-include: bucket_bootstrap.py
PY

# The schema: `mlflow server` creates it in a fresh database; another release's
# is brought to this one by `mlflow db upgrade`, run only then, since importing
# mlflow costs seconds on every start.  When the check itself fails, upgrade:
# it is a no-op on a current schema.  The URI names no password (libpq reads
# it from $PGPASSFILE).
schema=$(python3 - <<'PY' || echo unknown
# swarmai-include: schema_state.py
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
