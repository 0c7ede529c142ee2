"""The MLflow entrypoint's schema step, run in the offline MLflow image as rendered.

A fresh database is left to ``mlflow server`` (no upgrade: seconds saved on
every start); a schema at this release is left alone; one a release behind is
upgraded by ``mlflow db upgrade`` and is then current.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from swarmai.render.scripts import script

pytestmark = pytest.mark.e2e

# The database as an older MLflow release leaves it: its tables, migrated up to an
# earlier revision (what mlflow server does on a fresh database, stopped short).
OLD_RELEASE = """
import sqlalchemy
from alembic import command
from mlflow.store.db.utils import _get_alembic_config
from mlflow.store.tracking.dbmodels.initial_models import Base

url = "sqlite:////data/mlflow.db"
engine = sqlalchemy.create_engine(url)
Base.metadata.create_all(engine)
config = _get_alembic_config(url)
with engine.begin() as connection:
    config.attributes["connection"] = connection
    command.upgrade(config, "bd07f7e963c5")
"""


def _schema_step() -> str:
    """The entrypoint's lines from the schema check to just before ``exec mlflow server``."""
    rendered = script("mlflow-entrypoint.sh")
    step = rendered[rendered.index("schema=$(python3"):rendered.index("exec mlflow server")]
    return f'set -eu\n{step}echo "schema was $schema"\n'


def test_only_a_schema_behind_is_upgraded(tmp_path: Path, docker_cli: str,
                                          offline_images: dict[str, str]) -> None:
    (tmp_path / "step.sh").write_text(_schema_step())
    (tmp_path / "old_release.py").write_text(OLD_RELEASE)
    commands = [
        "sh /work/step.sh",                                         # fresh: mlflow server's job
        "python3 /work/old_release.py && sh /work/step.sh",         # behind: upgraded
        "sh /work/step.sh",                                         # current: left alone
    ]
    ran = subprocess.run(
        [docker_cli, "run", "--rm", "-v", f"{tmp_path}:/work:ro", "--tmpfs", "/data",
         "-e", "SWARMAI_BACKEND_STORE_URI=sqlite:////data/mlflow.db", "--entrypoint", "sh",
         offline_images["mlflow"], "-c", " && ".join(commands)],
        capture_output=True, text=True, timeout=300, check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    said = [line for line in ran.stdout.splitlines() if line.startswith("schema was")]
    assert said == ["schema was fresh", "schema was behind", "schema was current"], \
        ran.stdout + ran.stderr
    assert "the database schema is behind: mlflow db upgrade" in ran.stderr
