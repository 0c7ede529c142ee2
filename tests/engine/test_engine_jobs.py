"""The job runner's reading of node and task documents, against a fake API: no engine."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from swarmai.engine import Engine, jobs


def node_doc(hostname: str, *, state: str = "ready", availability: str = "active",
             resources: tuple[str, ...] = ()) -> dict[str, Any]:
    generic = [{"DiscreteResourceSpec": {"Kind": r.split("=")[0], "Value": int(r.split("=")[1])}}
               for r in resources]
    return {"ID": f"id-{hostname}",
            "Spec": {"Role": "worker", "Availability": availability, "Labels": {"gpu": "yes"}},
            "Status": {"State": state},
            "Description": {"Hostname": hostname, "Engine": {"EngineVersion": "26.1.5"},
                            "Resources": {"GenericResources": generic}}}


class FakeApi:
    def __init__(self, nodes: list[dict[str, Any]],
                 tasks: list[list[dict[str, Any]]] | None = None) -> None:
        self._nodes = nodes
        self._tasks = tasks or [[]]

    def nodes(self) -> list[dict[str, Any]]:
        return self._nodes

    def tasks(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        return self._tasks.pop(0) if len(self._tasks) > 1 else self._tasks[0]


def engine(api: FakeApi) -> Engine:
    return Engine(cli=None, api=api)  # type: ignore[arg-type]


def test_nodes_are_read_into_typed_facts() -> None:
    found = jobs.swarm_nodes(engine(FakeApi([
        node_doc("n2", resources=("swarmai-gpu-n2-1=1", "swarmai-gpu-n2-0=1")), node_doc("n1")])))
    assert [n.hostname for n in found] == ["n1", "n2"]
    assert found[1] == jobs.SwarmNode(
        hostname="n2", node_id="id-n2", role="worker", state="ready", availability="active",
        engine_version="26.1.5", generic_resources=("swarmai-gpu-n2-0=1", "swarmai-gpu-n2-1=1"),
        labels={"gpu": "yes"})


def test_only_ready_active_nodes_get_a_job() -> None:
    api = FakeApi([node_doc("n1"), node_doc("n2", state="down"),
                   node_doc("n3", availability="drain"), node_doc("n4")])
    targets, skipped = jobs._targets(engine(api), None)
    assert [n.hostname for n in targets] == ["n1", "n4"]
    assert [(r.hostname, r.state, r.exit_code) for r in skipped] == [
        ("n2", "down", None), ("n3", "unavailable", None)]
    assert skipped[0].error == "node is down: no job sent"
    targets, skipped = jobs._targets(engine(api), ["id-n4", "id-n2"])
    assert [n.hostname for n in targets] == ["n4"] and [r.hostname for r in skipped] == ["n2"]


def task(service: str, state: str, created: str, err: str = "") -> dict[str, Any]:
    return {"ServiceID": service, "CreatedAt": created, "Status": {"State": state, "Err": err}}


def test_waiting_ends_when_every_task_is_final_or_time_is_up(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "_POLL_S", 0.0)
    both = [jobs._Job("n1", "id-n1", "s1", "swarmai-job-facts-a"),
            jobs._Job("n2", "id-n2", "s2", "swarmai-job-facts-b")]
    api = FakeApi([], [[task("s1", "preparing", "1")],
                       [task("s1", "running", "1"), task("s2", "pending", "1")],
                       [task("s1", "complete", "1"),
                        task("s2", "rejected", "2", "No such image: x")]])
    latest = jobs._wait(engine(api), both, timeout_s=60)
    assert {s: t["Status"]["State"] for s, t in latest.items()} == {
        "s1": "complete", "s2": "rejected"}
    rejected = jobs._result(engine(api), both[1], latest["s2"])
    assert (rejected.state, rejected.exit_code, rejected.error) == (
        "rejected", None, "No such image: x")
    stuck = FakeApi([], [[task("s1", "preparing", "1")]])
    latest = jobs._wait(engine(stuck), both[:1], timeout_s=0)
    late = jobs._result(engine(stuck), both[0], latest["s1"])
    assert (late.state, late.error) == ("timeout", "still preparing when the time ran out")
    never = jobs._result(engine(stuck), both[1], None)
    assert (never.state, never.error) == ("timeout", "still pending when the time ran out")


def test_a_job_gets_its_networks_secrets_user_and_volume_mounts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    import python_on_whales.utils

    seen: list[list[str]] = []

    def run(args: list[str], **_: Any) -> str:
        seen.append(args)
        return "service-id\n"

    monkeypatch.setattr(python_on_whales.utils, "run", run)
    cli = SimpleNamespace(client_config=SimpleNamespace(docker_cmd=["docker"]))
    mounts = [jobs.BindMount("/srv/backups", "/snapshot"),
              jobs.BindMount("demo_mlflow-db", "/var/lib/mlflow", True, volume=True)]
    access = jobs.JobAccess(networks=("demo_registry",), secrets=("demo-db",), user="1000:100")
    job = jobs._create(Engine(cli=cli, api=None), "img", ["true"], "task",  # type: ignore[arg-type]
                       {}, mounts, "node-1", "node-1", access)
    args = seen[0]
    assert job.service_id == "service-id"
    pairs = list(itertools.pairwise(args))
    assert ("--network", "demo_registry") in pairs and ("--secret", "demo-db") in pairs
    assert ("--user", "1000:100") in pairs and ("--constraint", "node.id==node-1") in pairs
    assert ("--mount", "type=bind,source=/srv/backups,target=/snapshot") in pairs
    assert ("--mount", "type=volume,source=demo_mlflow-db,target=/var/lib/mlflow,readonly") \
        in pairs
    assert args[-2:] == ["img", "true"]
