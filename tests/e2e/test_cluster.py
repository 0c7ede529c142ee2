"""A real three-node Swarm (scripts/cluster.sh): images through a registry, GPUs pinned
across nodes, registry data that stays put, a node lost under load, promotion.

The cluster is one manager and two workers, each its own dockerd in its own
network, mount and UTS namespace, with fake GPU inventories (4 devices on
swarmai-n1, 2 on swarmai-n2) the Swarm scheduler enforces, and a TLS registry
with a login on the host.  The CLI talks to the manager (DOCKER_HOST) with a
private DOCKER_CONFIG holding the registry login, as a user on a manager would.

One stack is deployed once for the whole module; the tests run in file order
and each leaves it healthy for the next.  The last one takes a worker down.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import numpy as np
import pandas as pd
import pytest
from lifecycle import wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from loadgen import Load, send, summarize
from test_runtimes import LINEAR, ROWS, SCRIPT_LINEAR

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CLUSTER_JSON = Path("/run/swarmai-cluster/cluster.json")
NAME = "e2ecluster"
PORT = 18800
OFFLINE_COMMANDS = ("deploy", "models", "promote", "images")
IRIS_COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)",
                "petal width (cm)"]
IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.1, 4.4, 1.4], [6.3, 3.3, 6.0, 2.5]]

MAKE_SCORERS = """
import sys
import cloudpickle

def constant(value):
    def predict(frame):
        return [value] * len(frame)
    return predict

for version, value in (("v1", 1.0), ("v2", 2.0)):
    with open(f"{sys.argv[1]}/scorer-{version}.pkl", "wb") as handle:
        cloudpickle.dump(constant(value), handle)
"""


def stack_text(registry: str, torchserve: str) -> str:
    return f"""\
version: 1
name: {NAME}
gateway: {{port: {PORT}, tls: {{mode: "off"}}}}
network: {{ipvs: auto}}
storage: {{backend: seaweedfs, bucket: models, credentials_secret: {NAME}-s3}}
registry: {{backend_store: sqlite}}
nodes:
  swarmai-n1: {{gpus: ["0", "1", "2", "3"]}}
  swarmai-n2: {{gpus: ["0", "1"]}}
models:
  - name: scorer
    runtime: fastapi
    model: models:/scorer@production
    route: /scorer
    replicas: 3
  - name: linear
    runtime: torchserve
    model: models:/linear@production
    gpus: {{node: swarmai-n1, devices: ["1"]}}
  - name: iris
    runtime: fastapi
    model: models:/iris@production
    gpus: {{node: swarmai-n2, devices: ["0", "1"]}}
images:
  registry: {registry}
  # The fake GPUs have no CUDA behind them: the GPU-pinned TorchServe runs the CPU build.
  torchserve-gpu: {torchserve}
"""


def clash_text(registry: str) -> str:
    return f"""\
version: 1
name: e2eclash
gateway: {{port: {PORT + 1}, tls: {{mode: "off"}}}}
storage: {{credentials_secret: e2eclash-s3}}
nodes:
  swarmai-n1: {{gpus: ["0", "1", "2", "3"]}}
models:
  - name: thief
    runtime: fastapi
    model: models:/thief@production
    gpus: {{node: swarmai-n1, devices: ["1"]}}
images:
  registry: {registry}
"""


@dataclass(frozen=True)
class Cluster:
    facts: dict[str, Any]
    env: dict[str, str]  # for the CLI: DOCKER_HOST = the manager, DOCKER_CONFIG = the login
    stack: Path
    root: Path

    @property
    def gateway(self) -> str:
        return str(self.facts["GATEWAY_HOST"])

    def url(self, path: str) -> str:
        return f"http://{self.gateway}:{PORT}{path}"

    def swarmai(self, *args: str, manager: bool = True,
                timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """The real CLI against the manager (or, ``manager=False``, the host's engine)."""
        env = dict(self.env)
        if not manager:
            env.pop("DOCKER_HOST")
        # --offline everywhere: the third-party images are the ones built here.
        command = [*args, "--offline"] if args[0] in OFFLINE_COMMANDS else list(args)
        return subprocess.run(
            [sys.executable, "-c", "from swarmai.cli import main; main()", *command],
            capture_output=True, text=True, timeout=timeout, check=False, env=env)

    def status(self) -> dict[str, dict[str, Any]]:
        result = self.swarmai("status", str(self.stack), "--gateway-host", self.gateway,
                              "--output", "json")
        assert result.returncode == 0, result.stderr
        return {row["service"]: row for row in json.loads(result.stdout)}

    def manager(self) -> docker.APIClient:
        return docker.APIClient(base_url=self.facts["MANAGER_HOST"])


def _facts() -> dict[str, Any]:
    if not CLUSTER_JSON.exists():
        pytest.fail("the three-node cluster is not up: run scripts/cluster.sh up "
                    "(scripts/test.sh does)")
    facts: dict[str, Any] = json.loads(CLUSTER_JSON.read_text())
    return facts


def _login(facts: dict[str, Any], config: Path) -> None:
    password = Path(facts["REGISTRY_PASSWORD_FILE"]).read_text().strip()
    subprocess.run(["docker", "--config", str(config), "login", facts["REGISTRY"], "-u",
                    facts["REGISTRY_USER"], "--password-stdin"], input=password, text=True,
                   check=True, capture_output=True)


def node_snapshot(host: str) -> dict[str, set[str]]:
    """Everything a stack can leave on one node's engine."""
    api = docker.APIClient(base_url=host)
    manager = api.info().get("Swarm", {}).get("ControlAvailable")
    return {
        "containers": {c["Names"][0] for c in api.containers(all=True)},
        "networks": {n["Name"] for n in api.networks()},
        "volumes": {v["Name"] for v in (api.volumes().get("Volumes") or [])},
        "services": {s["Spec"]["Name"] for s in api.services()} if manager else set(),
        "configs": {c["Spec"]["Name"] for c in api.configs()} if manager else set(),
        "secrets": {s["Spec"]["Name"] for s in api.secrets()} if manager else set(),
        "labels": {f"{n['Description']['Hostname']}:{k}" for n in api.nodes()
                   for k in (n["Spec"].get("Labels") or {})} if manager else set(),
    }


def _models(root: Path, example_models: dict[str, Any]) -> dict[str, Path]:
    """scorer v1/v2 (constants), iris (scikit-learn), linear (TorchScript)."""
    subprocess.run([sys.executable, "-c", MAKE_SCORERS, str(root)], check=True)
    # The host's torch is the TorchServe image's (both locks pin it). Not in a container
    # on the host's engine: the tests running there meanwhile compare it before and after.
    subprocess.run([sys.executable, "-c", SCRIPT_LINEAR, json.dumps({**LINEAR, "rows": ROWS}),
                    str(root)], check=True, capture_output=True)
    return {"scorer-v1": root / "scorer-v1.pkl", "scorer-v2": root / "scorer-v2.pkl",
            "iris": example_models["paths"]["iris"], "linear": root / "linear.pt"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, offline_images: dict[str, str],
            example_models: dict[str, Any]) -> Iterator[Cluster]:
    """The stack deployed on the cluster, its images pushed from the host's engine."""
    facts = _facts()
    root = tmp_path_factory.mktemp("cluster")
    config = root / "docker-config"
    config.mkdir()
    _login(facts, config)
    stack = root / f"{NAME}.yaml"
    stack.write_text(stack_text(facts["REGISTRY"], offline_images["torchserve"]))
    env = {**os.environ, "DOCKER_HOST": facts["MANAGER_HOST"], "DOCKER_CONFIG": str(config),
           "XDG_STATE_HOME": str(root / "state")}
    ctx = Cluster(facts, env, stack, root)
    ctx.swarmai("rm", str(stack), "--volumes")  # a previous run's leftovers, if any
    hosts = list(facts["NODE_HOSTS"].values())
    before = {host: node_snapshot(host) for host in hosts}

    pushed = ctx.swarmai("images", "push", str(stack), manager=False)
    assert pushed.returncode == 0, pushed.stderr
    models = _models(root, example_models)
    started = time.monotonic()
    first = ctx.swarmai("deploy", str(stack), "--gateway-host", ctx.gateway)
    # A new stack's first deploy starts the registry and stops at its empty model list.
    assert first.returncode == 1 and "not in its registry yet" in first.stderr, first.stderr
    for name, path, alias in (("scorer", models["scorer-v1"], "production"),
                              ("scorer", models["scorer-v2"], "staging"),
                              ("iris", models["iris"], "production"),
                              ("linear", models["linear"], "production")):
        result = ctx.swarmai("models", "push", str(stack), name, str(path), "--alias", alias)
        assert result.returncode == 0, result.stderr
    deployed = ctx.swarmai("deploy", str(stack), "--gateway-host", ctx.gateway)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    print(f"\ncluster deploy: {time.monotonic() - started:.0f} s\n{deployed.stderr[-3000:]}")
    try:
        yield ctx
    finally:
        removed = ctx.swarmai("rm", str(stack), "--volumes")
        assert removed.returncode == 0, removed.stdout + removed.stderr
        # Each node's agent removes its task containers shortly after the manager
        # drops the tasks: the nodes are as found once they have all caught up.
        def as_found() -> bool:
            return {host: node_snapshot(host) for host in hosts} == before

        try:
            wait_until(as_found, 30, "every node back as found")
        finally:
            assert {host: node_snapshot(host) for host in hosts} == before, removed.stdout


def _post(url: str, payload: dict[str, Any]) -> dict[str, Any]:
    import urllib.request

    request = urllib.request.Request(url, json.dumps(payload).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.load(response)
    return answer


def test_replicas_spread_pinned_models_stay_and_images_come_by_digest(
        cluster: Cluster, example_models: dict[str, Any]) -> None:
    # Correct predictions through Traefik from every runtime.
    assert _post(cluster.url("/scorer/v1/predict"),
                 {"dataframe_records": [{"x": 1.0}]})["predictions"] == [1.0]
    body = _post(cluster.url("/models/linear/predictions/linear"), {"instances": ROWS})
    np.testing.assert_allclose(
        body["predictions"],
        (np.array(ROWS) @ np.array(LINEAR["weight"]).T + LINEAR["bias"]).tolist(), rtol=1e-5)
    frame = pd.DataFrame(IRIS_ROWS, columns=IRIS_COLUMNS)
    body = _post(cluster.url("/models/iris/v1/predict"),
                 {"dataframe_split": {"columns": IRIS_COLUMNS, "data": IRIS_ROWS}})
    assert body["predictions"] == [int(v) for v in example_models["iris"].predict(frame)]

    rows = cluster.status()
    assert len(rows["model-scorer"]["nodes"]) >= 2, rows["model-scorer"]
    assert rows["model-linear"]["nodes"] == ["swarmai-n1"]
    assert rows["model-iris"]["nodes"] == ["swarmai-n2"]

    api = cluster.manager()
    services = {s["Spec"]["Name"]: s for s in api.services(
        filters={"label": f"com.docker.stack.namespace={NAME}"})}
    registry = cluster.facts["REGISTRY"]
    for name, service in services.items():
        image = service["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        assert image.startswith(f"{registry}/") and "@sha256:" in image, (name, image)
    for service, node, devices in (("model-linear", "swarmai-n1", ["1"]),
                                   ("model-iris", "swarmai-n2", ["0", "1"])):
        _check_pinned(cluster, services[f"{NAME}_{service}"], node, devices)


def _check_pinned(cluster: Cluster, service: dict[str, Any], node: str,
                  devices: list[str]) -> None:
    """The task runs on ``node`` and its container has exactly ``devices``."""
    api = cluster.manager()
    tasks = [t for t in api.tasks(filters={"service": service["ID"],
                                            "desired-state": "running"})]
    hostnames = {n["ID"]: n["Description"]["Hostname"] for n in api.nodes()}
    assert {hostnames[t["NodeID"]] for t in tasks} == {node}
    kinds = {f"swarmai-gpu-{node}-{d}" for d in devices}
    reserved = service["Spec"]["TaskTemplate"]["Resources"]["Reservations"]["GenericResources"]
    assert {r["DiscreteResourceSpec"]["Kind"] for r in reserved} == kinds
    host = cluster.facts["NODE_HOSTS"][node]
    container = tasks[0]["Status"]["ContainerStatus"]["ContainerID"]
    env = dict(item.split("=", 1) for item in
               docker.APIClient(base_url=host).inspect_container(container)["Config"]["Env"])
    assert env["NVIDIA_VISIBLE_DEVICES"] == ",".join(devices)
    assigned = {key for key in env if key.startswith("DOCKER_RESOURCE_")}
    # Swarm keeps the kind's hyphens in the variable name.
    assert assigned == {f"DOCKER_RESOURCE_{k.upper()}" for k in kinds}, env


def test_a_second_stack_asking_for_a_held_device_fails_naming_it(cluster: Cluster) -> None:
    clash = cluster.root / "e2eclash.yaml"
    clash.write_text(clash_text(cluster.facts["REGISTRY"]))
    started = time.monotonic()
    result = cluster.swarmai("deploy", str(clash), "--timeout", "120")
    assert result.returncode == 1, result.stdout + result.stderr
    assert time.monotonic() - started < 120
    assert "Traceback" not in result.stderr
    assert ("device 1 of node swarmai-n1 is held by service e2ecluster_model-linear"
            in result.stderr), result.stderr
    assert not cluster.manager().services(filters={"label": "com.docker.stack.namespace=e2eclash"})


def test_doctor_probes_every_node_and_its_pull_from_the_registry(cluster: Cluster) -> None:
    result = cluster.swarmai("doctor", str(cluster.stack), "--output", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    nodes = {node["hostname"]: node for node in report["nodes"]}
    assert sorted(nodes) == cluster.facts["NODES"]
    registry = cluster.facts["REGISTRY"]
    assert report["probe_image"].startswith(f"{registry}/swarmai/server:")
    for hostname, node in nodes.items():
        # Pulled from the registry and run there; this kernel has no IPVS, on every node.
        assert node["pulled"] is True and node["ipvs"] is False, (hostname, node)
        assert "runc" in node["runtimes"], node
    assert not [p for p in report["problems"] if "swarmai-gpu" in p], report["problems"]
    text = cluster.swarmai("doctor", str(cluster.stack)).stdout
    for hostname in nodes:
        assert f"node {hostname}: " in text, text


def _versions(cluster: Cluster) -> dict[str, list[int]]:
    """Every registered version of every model (aliased or not)."""
    result = cluster.swarmai("models", "list", str(cluster.stack), "--output", "json")
    assert result.returncode == 0, result.stderr
    found: dict[str, list[int]] = {}
    for version in json.loads(result.stdout):
        found.setdefault(version["name"], []).append(int(version["version"]))
    return {name: sorted(numbers) for name, numbers in found.items()}


def _healthy(api: docker.APIClient, task: dict[str, Any]) -> bool:
    """The task's container (on the manager, where the registry's services live) is healthy."""
    container = (task["Status"].get("ContainerStatus") or {}).get("ContainerID")
    if not container:
        return False
    state = api.inspect_container(container)["State"]
    return bool(state.get("Health", {}).get("Status") == "healthy")


def test_registry_data_survives_restarts_of_the_stateful_services(cluster: Cluster) -> None:
    before = _versions(cluster)
    assert before == {"scorer": [1, 2], "iris": [1], "linear": [1]}
    api = cluster.manager()
    for service in ("s3", "mlflow"):
        name = f"{NAME}_{service}"
        old = {t["ID"] for t in api.tasks(filters={"service": name})}
        # Detached: the CLI would sit out the whole update-monitor window instead.
        subprocess.run(["docker", "service", "update", "--force", "--detach", "--quiet", name],
                       env=cluster.env, check=True, capture_output=True)

        def replaced(name: str = name, old: set[str] = old) -> bool:
            tasks = api.tasks(filters={"service": name, "desired-state": "running"})
            return any(t["ID"] not in old and t["Status"]["State"] == "running"
                       and _healthy(api, t) for t in tasks)

        wait_until(replaced, 180, f"a new, healthy task of {name}")
    assert _versions(cluster) == before
    status = cluster.swarmai("status", str(cluster.stack), "--gateway-host", cluster.gateway)
    assert "registry data: node swarmai-n0" in status.stdout, status.stdout


def test_promotion_across_nodes_fails_no_request(cluster: Cluster) -> None:
    url = cluster.url("/scorer/v1/predict")
    payload = {"dataframe_records": [{"x": 1.0}]}
    with Load(url, payload, clients=4) as load:
        time.sleep(2)
        promoted = cluster.swarmai("promote", str(cluster.stack), "scorer", "--to",
                                   "production", "--from", "staging", "--gateway-host",
                                   cluster.gateway, "--output", "json")
        done = time.monotonic()
        time.sleep(2)
    assert promoted.returncode == 0, promoted.stderr
    summary = load.summary()
    print(f"\npromotion across nodes: {summary}")
    assert summary["failed"] == 0, summary
    assert load.summary(since=done)["versions"] == {"2": load.summary(since=done)["requests"]}
    assert len(cluster.status()["model-scorer"]["nodes"]) >= 2


def test_a_lost_worker_reschedules_its_replicas_and_its_pinned_model_returns(
        cluster: Cluster) -> None:
    url = cluster.url("/scorer/v1/predict")
    payload = {"dataframe_records": [{"x": 1.0}]}
    harness = str(REPO / "scripts" / "cluster.sh")
    with Load(url, payload, clients=4) as load:
        time.sleep(2)
        stopped_at = time.monotonic()
        subprocess.run([harness, "stop-node", "swarmai-n2"], check=True, capture_output=True)

        def rescheduled() -> bool:
            row = cluster.status()["model-scorer"]
            return row["running"] == 3 and "swarmai-n2" not in row["nodes"]

        wait_until(rescheduled, 180, "the scorer's replicas back on the surviving nodes")
        recovered_at = time.monotonic()
        status = cluster.swarmai("status", str(cluster.stack), "--gateway-host", cluster.gateway)
        time.sleep(10)
        steady_from = time.monotonic()
        time.sleep(10)
        subprocess.run([harness, "start-node", "swarmai-n2"], check=True, capture_output=True)
    while_down = load.summary()
    after = load.summary(since=steady_from)
    print(f"\nnode lost: rescheduled in {recovered_at - stopped_at:.1f} s; "
          f"while down {while_down}; once rescheduled {after}")
    assert "node swarmai-n2 is down; waiting for it: model-iris" in status.stdout, status.stdout
    assert while_down["requests"] > 0
    assert while_down["failed"] <= while_down["requests"] * 0.01, while_down
    assert after["failed"] == 0 and after["requests"] > 0, after

    def pinned_back() -> bool:
        row = cluster.status()["model-iris"]
        return row["running"] == 1 and row["nodes"] == ["swarmai-n2"]

    wait_until(pinned_back, 240, "model-iris running on swarmai-n2 again")
    # The registry's node was never lost: every version is still there.
    assert _versions(cluster) == {"scorer": [1, 2], "iris": [1], "linear": [1]}
    assert summarize([send(url, json.dumps(payload).encode(), 30)
                      for _ in range(20)])["failed"] == 0
