"""The database half of a password rotation: shell run inside a container of the
stack's Postgres image, on the stack's registry network, with the secrets as files.

The password never appears in an argv or environment, on the host or in the
container: libpq reads the current one from a private pgpass file, and psql
reads the new one from its file with ``\\set NAME `cat FILE```, then sends
``ALTER ROLE ... PASSWORD`` (hashed by the server with scram-sha-256).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from swarmai.errors import OperationError
from swarmai.lifecycle.pgpass import write_pgpass
from swarmai.lifecycle.tasks import Task, TaskResult
from swarmai.render import naming

# Who MLflow logs in as (render/registry.py creates this role at initdb).
ROLE = "mlflow"
DATABASE = "mlflow"
SECRETS = "/run/secrets"

# Writes a pgpass file for the secret named $1 (swarmai.lifecycle.pgpass) and
# points libpq at it.
_PGPASS = f"""
umask 077
pgpass() {{
{write_pgpass(f'"{SECRETS}/$1"', "*:*:*:*")}}}
"""

_TASK_TIMEOUT_S = 120.0
_CONNECT = f"-h {naming.POSTGRES} -p {naming.POSTGRES_PORT} -U {ROLE} -d {DATABASE} -w"

# For each secret named in "$@": one line "NAME accepted|refused", or exit 3 when
# the database cannot be reached at all (that is no answer about the password).
PROBE_SCRIPT = _PGPASS + rf"""
for name in "$@"; do
  pgpass "$name"
  tries=0
  while :; do
    if PGCONNECT_TIMEOUT=5 psql {_CONNECT} -tAc 'select 1' >/dev/null 2>/tmp/err; then
      echo "$name accepted"; break
    elif grep -q 'password authentication failed' /tmp/err; then
      echo "$name refused"; break
    fi
    tries=$((tries + 1))
    if [ "$tries" -ge 30 ]; then cat /tmp/err >&2; exit 3; fi
    sleep 1
  done
done
"""

# $1: the secret holding the current password, $2: the one holding the new one.
ALTER_SCRIPT = _PGPASS + rf"""
set -eu
pgpass "$1"
cp "{SECRETS}/$2" /tmp/new
cat > /tmp/alter.sql <<'SQL'
\set new `cat /tmp/new`
ALTER ROLE {ROLE} PASSWORD :'new';
SQL
PGCONNECT_TIMEOUT=10 psql {_CONNECT} -v ON_ERROR_STOP=1 -q -f /tmp/alter.sql
rm -f /tmp/new /tmp/pgpass
"""


def parse_probe(output: str, secret: str) -> bool:
    """Whether the probe's ``output`` says the database accepted ``secret``."""
    for line in output.splitlines():
        found, _, verdict = line.strip().rpartition(" ")
        if found == secret and verdict in ("accepted", "refused"):
            return verdict == "accepted"
    raise OperationError(f"the password check of secret {secret} gave no answer",
                         stderr=output)


@dataclass(frozen=True)
class TaskDatabase:
    """The stack's Postgres, asked through one-off tasks of its own image on its registry
    network (``Backend.run_task``: a Swarm job or a Compose container, the same here)."""

    run: Callable[[Task], TaskResult]
    image: str  # the running database's: it has psql, and this host has it

    def accepts(self, secret: str) -> bool:
        result = self._task(PROBE_SCRIPT, (secret,),
                            f"checking the database password of secret {secret}")
        return parse_probe(result.stdout, secret)

    def set_password(self, current: str, new: str) -> None:
        self._task(ALTER_SCRIPT, (current, new),
                   f"changing the database password to secret {new}")

    def _task(self, script: str, secrets: tuple[str, ...], what: str) -> TaskResult:
        result = self.run(Task(what, self.image, ("sh", "-c", script, "sh", *secrets),
                               secrets=secrets, timeout_s=_TASK_TIMEOUT_S))
        if result.return_code != 0:
            raise OperationError(f"{what} failed", return_code=result.return_code,
                                 stderr=result.stderr)
        return result
