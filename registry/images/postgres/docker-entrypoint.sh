#!/bin/sh
# swarmai: PostgreSQL entrypoint with the official image's contract.
#
#   POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE   the superuser's password
#   POSTGRES_USER (default postgres)              the superuser
#   POSTGRES_DB (default $POSTGRES_USER)          created on first start
#   POSTGRES_INITDB_ARGS                          extra initdb arguments
#
# As root it reads the password (secrets may be readable by root only), makes
# $PGDATA the postgres user's, and re-runs itself as postgres.  The cluster is
# created only when $PGDATA holds none, so restarts never touch existing data.
# Local socket connections are trusted (pg_isready, psql inside the container);
# every network connection needs the password (scram-sha-256).
set -eu

die() { echo "postgres entrypoint: $*" >&2; exit 1; }

if [ "${1#-}" != "$1" ]; then
  set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
  exec "$@"
fi
: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

if [ "$(id -u)" = 0 ]; then
  if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    [ -z "${POSTGRES_PASSWORD:-}" ] || die "set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE, not both"
    [ -r "$POSTGRES_PASSWORD_FILE" ] || die "cannot read POSTGRES_PASSWORD_FILE $POSTGRES_PASSWORD_FILE"
    POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
    export POSTGRES_PASSWORD
    unset POSTGRES_PASSWORD_FILE
  fi
  mkdir -p "$PGDATA"
  chmod 0700 "$PGDATA"
  find "$PGDATA" ! -user postgres -exec chown postgres:postgres '{}' +
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
  POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  [ -n "${POSTGRES_PASSWORD:-}" ] || die "no password: set POSTGRES_PASSWORD_FILE (or POSTGRES_PASSWORD)"
  user=${POSTGRES_USER:-postgres}
  db=${POSTGRES_DB:-$user}
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a list of arguments
  initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 ${POSTGRES_INITDB_ARGS:-}
  rm -f "$pwfile"
  printf '%s\n' "host all all 0.0.0.0/0 scram-sha-256" "host all all ::/0 scram-sha-256" \
    >> "$PGDATA/pg_hba.conf"
  printf '%s\n' "listen_addresses = '*'" "password_encryption = 'scram-sha-256'" \
    >> "$PGDATA/postgresql.conf"
  if [ "$db" != postgres ]; then
    # Single-user mode: no server, no socket, nothing can connect half-way.
    printf 'CREATE DATABASE "%s";\n' "$(printf '%s' "$db" | sed 's/"/""/g')" \
      | postgres --single -D "$PGDATA" postgres >/dev/null
  fi
  echo "postgres entrypoint: created cluster in $PGDATA (user $user, database $db)"
fi

# A cluster of another major version cannot be started by this server, and
# pg_upgrade needs both versions' binaries: say what to do instead of failing later.
found=$(cat "$PGDATA/PG_VERSION")
if [ "$found" != "$POSTGRES_MAJOR" ]; then
  die "$PGDATA holds a PostgreSQL $found cluster and this image runs PostgreSQL $POSTGRES_MAJOR; \
deploy with the images it was made with (the same images: and --offline as then), or dump it \
with that version's pg_dump and load the dump into an empty volume with this one"
fi

unset POSTGRES_PASSWORD POSTGRES_PASSWORD_FILE
exec "$@"
