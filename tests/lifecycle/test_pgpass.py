"""The pgpass file swarmai's shell writes from a secret: escaped, private, and the same
grammar in the MLflow entrypoint as in the database tasks."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

from swarmai import assets
from swarmai.lifecycle.pgpass import ESCAPE, write_pgpass


def test_the_line_is_escaped_private_and_never_shell_text(tmp_path: Path) -> None:
    secret = tmp_path / "db-password"
    # ':' and '\' are pgpass syntax; '$(...)' and quotes would run or break shell text.
    secret.write_text("a:b\\c$(touch pwned)'\"")
    target = tmp_path / "pgpass"
    script = write_pgpass(f'"{secret}"', "postgres:5432:mlflow:mlflow", path=str(target))
    done = subprocess.run(["sh", "-c", script + 'echo "$PGPASSFILE"'], cwd=tmp_path,
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == str(target)
    assert target.read_text() == "postgres:5432:mlflow:mlflow:a\\:b\\\\c$(touch pwned)'\""
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not (tmp_path / "pwned").exists()


def test_the_mlflow_entrypoint_escapes_the_same_way() -> None:
    entrypoint = assets.read_text("registry", "entrypoints/mlflow-entrypoint.sh")
    assert f"sed -e '{ESCAPE}'" in entrypoint
    assert "password=" not in entrypoint  # no shell variable holds it
