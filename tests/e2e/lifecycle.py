"""Shared pieces of the Swarm and Compose lifecycle tests: the stack and its clients."""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd

from swarmai import tlsca

IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
IRIS_COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
CHURN_ROWS = [{"support_calls": 3, "tenure_months": 5}, {"support_calls": 9, "tenure_months": 2},
              {"support_calls": 0, "tenure_months": 40}]


# The lifecycle stacks serve HTTPS (the default) on their plain port + this.
HTTPS_OFFSET = 5


def stack_text(name: str, port: int, *, extra_model: str = "") -> str:
    return f"""\
version: 1
name: {name}
gateway: {{port: {port}, https_port: {port + HTTPS_OFFSET}}}
network: {{ipvs: auto}}
storage: {{backend: seaweedfs, bucket: models, credentials_secret: {name}-s3}}
registry: {{backend_store: postgres, db_password_secret: {name}-db}}
models:
  - name: iris
    runtime: fastapi
    model: models:/iris@production
    replicas: 2
    batching: {{max_batch_size: 16, max_delay_ms: 5}}
  - name: churn
    runtime: fastapi
    model: models:/churn@production
    route: /churn
{extra_model}"""


BAD_MODEL = """\
  - name: ghost
    runtime: fastapi
    model: models:/ghost@production
"""


def write_stack(directory: Path, name: str, port: int, **kwargs: str) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(stack_text(name, port, **kwargs))
    return path


def local_ca() -> ssl.SSLContext:
    """A client context trusting only swarmai's local CA (where the CLI made it)."""
    return ssl.create_default_context(cafile=str(tlsca.ca_dir() / tlsca.CA_CERT))


def post(url: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    """POST JSON; an https URL is verified against swarmai's local CA."""
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    context = local_ca() if url.startswith("https:") else None
    with urllib.request.urlopen(request, timeout=30, context=context) as response:
        return response.status, json.load(response), dict(response.headers)


def https_url(port: int, path: str) -> str:
    """``path`` on the HTTPS port of a stack whose plain port is ``port`` (stack_text)."""
    return f"https://127.0.0.1:{port + HTTPS_OFFSET}{path}"


def assert_redirects_to_https(port: int, path: str) -> None:
    """Plain HTTP on ``port`` answers with a permanent redirect to the HTTPS port."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", path, body=b"{}")
        response = connection.getresponse()
        assert (response.status, response.getheader("Location")) == (308, https_url(port, path))
    finally:
        connection.close()


def predict_both(port: int, models: dict[str, Any]) -> dict[str, str]:
    """Predict through the gateway over HTTPS, verified against swarmai's local CA (plain
    HTTP redirects); assert both models answer correctly. Returns versions."""
    assert_redirects_to_https(port, "/churn/v1/predict")
    frame = pd.DataFrame(IRIS_ROWS, columns=IRIS_COLUMNS)
    status, body, headers = post(
        https_url(port, "/models/iris/v1/predict"),
        {"dataframe_split": {"columns": IRIS_COLUMNS, "data": IRIS_ROWS}})
    assert status == 200
    assert body["predictions"] == [int(v) for v in models["iris"].predict(frame)]
    assert headers["X-Model-Name"] == "iris"
    versions = {"iris": headers["X-Model-Version"]}
    status, body, headers = post(https_url(port, "/churn/v1/predict"),
                                 {"dataframe_records": CHURN_ROWS})
    assert status == 200
    assert body["predictions"] == models["churn"](pd.DataFrame(CHURN_ROWS))
    versions["churn"] = headers["X-Model-Version"]
    return versions


def wait_until(condition: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s:.0f} s")
        time.sleep(1)


def swarmai(*args: str, cwd: Path | None = None,
            timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess, as a user would.  Each call's time is
    printed (pytest shows it for a failed test, or with -s) to find slow steps."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", "from swarmai.cli import main; main()", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
    )
    print(f"[{time.monotonic() - started:6.1f} s] swarmai {' '.join(args[:3])} -> "
          f"{done.returncode}", flush=True)
    return done


def engine_snapshot() -> dict[str, set[str]]:
    """Names of everything a stack can leave behind on the engine."""
    from swarmai.engine import Engine

    api = Engine.from_env().api
    swarm = api.info().get("Swarm", {}).get("ControlAvailable")
    return {
        "containers": {c["Names"][0] for c in api.containers(all=True)},
        "networks": {n["Name"] for n in api.networks()},
        "volumes": {v["Name"] for v in (api.volumes().get("Volumes") or [])},
        "services": {s["Spec"]["Name"] for s in api.services()} if swarm else set(),
        "configs": {c["Spec"]["Name"] for c in api.configs()} if swarm else set(),
        "secrets": {s["Spec"]["Name"] for s in api.secrets()} if swarm else set(),
    }


# Run inside the gateway container (its image has python3): a read and a
# container create through the engine proxy, and whether the socket is there.
_ENGINE_PROBE = """
import json, os, urllib.error, urllib.request
def call(method, path, body=None):
    request = urllib.request.Request("http://engine-proxy:2375" + path, method=method,
                                     data=body, headers={"Content-Type": "application/json"})
    try:
        return urllib.request.urlopen(request, timeout=10).status
    except urllib.error.HTTPError as error:
        return error.code
print(json.dumps({
    "read": call("GET", "/v1.45/version"),
    "create": call("POST", "/v1.45/containers/create", b'{"Image": "busybox"}'),
    "socket": os.path.exists("/var/run/docker.sock"),
}))
"""


def engine_calls_from_gateway(*labels: str) -> dict[str, Any]:
    """What the gateway container (the one with ``labels``) may do to the engine."""
    return _probe_in(labels, _ENGINE_PROBE)


# Run inside a model server (its image has python3): what it may do to MLflow.
_REGISTRY_PROBE = """
import json, socket, urllib.error, urllib.request
def call(method, path, body=None):
    request = urllib.request.Request("http://registry-proxy:5000/api/2.0/mlflow/" + path,
                                     method=method, data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        return urllib.request.urlopen(request, timeout=10).status
    except urllib.error.HTTPError as error:
        return error.code
def resolves(name):
    try:
        socket.getaddrinfo(name, 5000)
        return True
    except OSError:
        return False
print(json.dumps({
    "read": call("GET", "registered-models/get?name=iris"),
    "move_alias": call("POST", "registered-models/alias",
                       b'{"name": "iris", "alias": "production", "version": "1"}'),
    "register": call("POST", "model-versions/create",
                     b'{"name": "iris", "source": "s3://elsewhere/model"}'),
    "delete": call("DELETE", "registered-models/delete", b'{"name": "iris"}'),
    "mlflow_resolves": resolves("mlflow"),
}))
"""


# What a model server sees: reads pass, every write is the proxy's 403, and
# MLflow itself is not on its network.
REGISTRY_REFUSED = {"read": 200, "move_alias": 403, "register": 403, "delete": 403,
                    "mlflow_resolves": False}


def registry_calls_from_model(*labels: str) -> dict[str, Any]:
    """What a model server container (the one with ``labels``) may do to MLflow."""
    return _probe_in(labels, _REGISTRY_PROBE)


def _probe_in(labels: tuple[str, ...], code: str) -> dict[str, Any]:
    """Run ``code`` with python3 in the first running container with ``labels``."""
    from swarmai.engine import Engine

    api = Engine.from_env().api
    container = api.containers(filters={"label": list(labels), "status": "running"})[0]
    execution = api.exec_create(container["Id"], ["python3", "-c", code])
    output = api.exec_start(execution["Id"]).decode()
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def root_processes(project_label: str, service_label: str) -> set[str]:
    """The services of a stack (its containers with ``project_label``) that run a
    process as root, by the value of their ``service_label``."""
    from swarmai.engine import Engine

    api = Engine.from_env().api
    found = set()
    for container in api.containers(filters={"label": project_label, "status": "running"}):
        top = api.top(container["Id"], ps_args="-o pid,uid,comm")
        uids = [row[top["Titles"].index("UID")] for row in top["Processes"]]
        if any(uid in ("0", "root") for uid in uids):
            found.add(container["Labels"][service_label])
    return found
