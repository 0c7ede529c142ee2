"""The one way swarmai hands libpq a password from a Docker secret: a pgpass file.

``sed`` writes the pgpass line from the secret file straight into the private
file, escaping ``:`` and ``\\`` as the format asks, so the password is never
shell text, an argument or an environment variable (the MLflow entrypoint,
registry/entrypoints/mlflow-entrypoint.sh, uses the same two ``sed`` scripts).
"""

from __future__ import annotations

# pgpass fields are separated by ':'; a password's own ':' and '\' are escaped.
ESCAPE = r"s/\\/\\\\/g; s/:/\\:/g"
PGPASSFILE = "/tmp/pgpass"


def write_pgpass(secret_file: str, match: str, path: str = PGPASSFILE) -> str:
    """Shell that writes a pgpass file at ``path`` for the password in ``secret_file`` (a
    path, or a shell word such as ``"/run/secrets/$1"``), for the connections ``match``
    names (``host:port:database:user``, ``*`` for any), and exports it to libpq."""
    return (f"(umask 077; sed -e '{ESCAPE}' -e 's/^/{match}:/' {secret_file} > {path})\n"
            f"export PGPASSFILE={path}\n")
