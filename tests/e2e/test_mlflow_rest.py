"""The light REST client against a real MLflow server: the same answers as mlflow's.

The server is swarmai's offline MLflow image, alone (SQLite, artifacts in the
container), published on 127.0.0.1.  Every look-up a registry operation makes
over HTTP (check, list, describe, requirements) is run with :class:`RestClient` and with
``mlflow.MlflowClient`` and must agree, errors included; moves made with one
are read with the other; the operations that use it import no mlflow.
(tests/incontainer/registry_ops/test_rest_client_http.py: retries and refusals.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from swarmai import modeluri
from swarmai.incontainer.mlflow_rest import RestClient
from swarmai.incontainer.registry_ops import aliases, requirements, versions

pytestmark = pytest.mark.e2e

# Two versions with a metric each, aliases on both, one swarmai tag, and a second model.
POPULATE = """
import sys, mlflow
from mlflow import MlflowClient
from mlflow.pyfunc.model import PythonModel

class Scale(PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input

mlflow.set_tracking_uri(sys.argv[1])
for name, accuracies in (("scaler", (0.80, 0.90)), ("other", (0.5,))):
    for accuracy in accuracies:
        with mlflow.start_run():
            mlflow.log_metric("accuracy", accuracy)
            info = mlflow.pyfunc.log_model(name="model", python_model=Scale())
            mlflow.register_model(info.model_uri, name)
client = MlflowClient()
client.set_registered_model_alias("scaler", "production", "1")
client.set_registered_model_alias("scaler", "staging", "2")
client.set_registered_model_tag("scaler", "swarmai.canary.production", '{"version": "2"}')
client.set_registered_model_tag("scaler", "owner", "team-a")
"""
URIS = ["models:/scaler@production", "models:/scaler@staging", "models:/scaler/2",
        "models:/scaler@ghost", "models:/scaler/9", "models:/nobody@production"]


@pytest.fixture(scope="module")
def server(docker_cli: str, offline_images: dict[str, str]) -> Iterator[str]:
    """swarmai's MLflow image serving on 127.0.0.1, holding POPULATE's models."""
    started = subprocess.run(
        [docker_cli, "run", "-d", "--rm", "-p", "127.0.0.1::5000", offline_images["mlflow"],
         "mlflow", "server", "--host", "0.0.0.0", "--port", "5000", "--workers", "1",
         "--backend-store-uri", "sqlite:////tmp/mlflow.db",
         "--artifacts-destination", "/tmp/artifacts",
         "--allowed-hosts", "localhost,localhost:*,127.0.0.1,127.0.0.1:*"],
        capture_output=True, text=True, check=True, timeout=60)
    container = started.stdout.strip()
    try:
        port = subprocess.run([docker_cli, "port", container, "5000/tcp"], capture_output=True,
                              text=True, check=True).stdout.split(":")[-1].strip()
        uri = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "MLflow did not answer within 120 s"
                time.sleep(0.5)
        subprocess.run([sys.executable, "-c", POPULATE, uri], check=True,
                       capture_output=True, timeout=300, env={
                           **os.environ, "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "false"})
        yield uri
    finally:
        subprocess.run([docker_cli, "rm", "-f", container], capture_output=True, check=False)


def _mlflow(uri: str) -> Any:
    """mlflow's client, as registry_ops.client_for makes it (artifact reads follow
    the global tracking URI, not the client's)."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow.MlflowClient()


def test_check_list_and_describe_answer_as_mlflow_does(server: str) -> None:
    rest, real = RestClient(server), _mlflow(server)
    assert [r.as_dict() for r in versions.check(rest, URIS)] == \
        [r.as_dict() for r in versions.check(real, URIS)]
    assert [v.as_dict() for v in versions.list_versions(rest)] == \
        [v.as_dict() for v in versions.list_versions(real)]
    assert aliases.describe(rest, "scaler", ["1", "2"]) == aliases.describe(real, "scaler",
                                                                             ["1", "2"])
    checked = {r.uri: r for r in versions.check(rest, URIS)}  # and the answers are right
    assert checked["models:/scaler@production"].version == "1"
    assert checked["models:/scaler@production"].canary == "2"
    assert "RESOURCE_DOES_NOT_EXIST" in str(checked["models:/nobody@production"].error)
    assert aliases.describe(rest, "scaler", [])["versions"]["2"]["metrics"] == {"accuracy": 0.9}


def test_requirements_are_read_as_mlflow_reads_them(server: str) -> None:
    rest, real = RestClient(server), _mlflow(server)
    uris = ["models:/scaler/1", "models:/scaler/2", "models:/other/1"]
    read = [r.as_dict() for r in requirements.requirements(rest, uris)]
    assert read == [r.as_dict() for r in requirements.requirements(real, uris)]
    assert all(r["recorded"] and any(line.startswith("mlflow") for line in r["lines"])
               for r in read), read
    with pytest.raises(Exception, match="RESOURCE_DOES_NOT_EXIST"):
        requirements.requirements(rest, ["models:/scaler/9"])


def test_moves_and_tags_made_over_rest_are_what_mlflow_reads(server: str) -> None:
    rest, real = RestClient(server), _mlflow(server)
    moved = aliases.move_alias(rest, "other", "production", "1")
    assert (moved.previous, moved.changed) == (None, True)
    assert real.get_model_version_by_alias("other", "production").version == "1"
    assert json.loads(real.get_registered_model("other").tags[modeluri.pending_tag(
        "production")]) == {"from": None, "to": "1", "previous": None}
    aliases.set_tag(rest, "other", modeluri.pending_tag("production"), None)
    assert modeluri.pending_tag("production") not in real.get_registered_model("other").tags
    aliases.set_tag(rest, "other", modeluri.pending_tag("production"), None)  # idempotent
    with pytest.raises(Exception, match="RESOURCE_DOES_NOT_EXIST"):
        aliases.move_alias(rest, "other", "production", "7")


def test_lookup_operations_import_no_mlflow(server: str) -> None:
    probe = ("import sys, contextlib, io\n"
             "from swarmai.incontainer.registry_ops.__main__ import main\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n"
             "    code = main(['--tracking-uri', sys.argv[1], 'describe', 'scaler'])\n"
             "    code += main(['--tracking-uri', sys.argv[1], 'requirements',\n"
             "                  'models:/scaler/1'])\n"
             "print(code, 'mlflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe, server], capture_output=True,
                          text=True, timeout=120, check=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.stdout.split() == ["0", "False"], done.stdout + done.stderr
