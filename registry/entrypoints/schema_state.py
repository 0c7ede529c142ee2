# swarmai: is MLflow's database schema behind this MLflow release?  Prints one word:
#   fresh    no MLflow tables yet: `mlflow server` creates them itself
#   current  the database is at this release's newest migration
#   behind   run `mlflow db upgrade` (another release created the schema)
# Importing mlflow costs seconds on every start; this reads the migrations'
# files as text and the database's alembic revision with SQLAlchemy alone.

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
