"""Node facts and volume reports from fabricated job results: no engine."""

from __future__ import annotations

import json
from dataclasses import replace

from swarmai.engine import NodeJobResult
from swarmai.lifecycle.nodes import (
    NodeFacts,
    NodeVolumes,
    VolumeLeft,
    describe_leftovers,
    ipvs_on_all,
    node_volumes,
    with_probe,
)

LABEL = "com.docker.stack.namespace=dev"


def node(hostname: str = "swarmai-n2", **changes: object) -> NodeFacts:
    base = NodeFacts(hostname=hostname, node_id=f"id-{hostname}", role="worker", state="ready",
                     availability="active", engine_version="26.1.5", generic_resources=(),
                     labels={})
    return replace(base, **changes)  # type: ignore[arg-type]


def job(state: str = "complete", output: str = "", *, exit_code: int | None = 0,
        error: str = "", stderr: str = "") -> NodeJobResult:
    return NodeJobResult("swarmai-n2", "id-swarmai-n2", state, exit_code,  # type: ignore[arg-type]
                         output, error, stderr)


FACTS = {"ipvs": True, "runtimes": ["nvidia", "runc"], "default_runtime": "nvidia",
         "nvidia_swarm_resource": "", "engine_version": "26.1.5", "engine_error": ""}


def test_a_completed_probe_fills_the_node() -> None:
    found = with_probe(node(), job(output=json.dumps(FACTS) + "\n"))
    assert found.probed and found.pulled is True and found.probe_error == ""
    assert found.ipvs is True and found.runtimes == ("nvidia", "runc")
    assert found.default_runtime == "nvidia" and found.nvidia_swarm_resource == ""


def test_a_probe_that_never_started_or_answered() -> None:
    rejected = with_probe(node(), job("rejected", exit_code=None,
                                      error="No such image: swarmai/server:0.1.0-abc"))
    assert rejected.pulled is False and "No such image" in rejected.probe_error
    assert not rejected.probed
    crashed = with_probe(node(), job("failed", "", exit_code=1,
                                     stderr="Traceback ...\nModuleNotFoundError: nodeagent\n"))
    assert crashed.pulled is True and not crashed.probed
    assert crashed.probe_error == "the facts job exited 1: ModuleNotFoundError: nodeagent"
    late = with_probe(node(), job("timeout", exit_code=None, error="still preparing"))
    assert late.pulled is None and late.probe_error == "no answer: still preparing"
    down = with_probe(node(state="down"), job("down", exit_code=None, error="node is down"))
    assert down.pulled is None and not down.probed and down.probe_error == "node is down"
    assert with_probe(node(), None) == node()


def test_an_engine_the_agent_could_not_ask_is_a_probe_error() -> None:
    answer = {**FACTS, "runtimes": None, "engine_error": "asking the engine failed: EACCES"}
    found = with_probe(node(), job(output=json.dumps(answer)))
    assert found.ipvs is True and found.runtimes is None
    assert found.probe_error == "asking the engine failed: EACCES"


def test_ipvs_on_all_counts_probed_ready_nodes_only() -> None:
    assert ipvs_on_all([]) is None
    assert ipvs_on_all([node(), node(state="down", ipvs=False)]) is None
    assert ipvs_on_all([node("a", ipvs=True), node("b", ipvs=True)]) is True
    assert ipvs_on_all([node("a", ipvs=True), node("b", ipvs=False)]) is False
    assert ipvs_on_all([node("a", ipvs=True), node("b", state="down", ipvs=False)]) is True


def test_volume_reports_from_job_results() -> None:
    answer = {"removed": ["dev_cache"], "remaining": [{"name": "dev_db", "error": "in use"}]}
    report = node_volumes(job(output=json.dumps(answer)), LABEL)
    assert report == NodeVolumes("swarmai-n2", LABEL, removed=("dev_cache",),
                                 remaining=(VolumeLeft("dev_db", "in use"),))
    assert node_volumes(job("down", exit_code=None, error="node is down"), LABEL).down
    failed = node_volumes(job("rejected", exit_code=None, error="No such image: x"), LABEL)
    assert not failed.down and failed.error == "the job gave no answer: No such image: x"


def test_leftovers_name_the_node_the_volumes_and_the_command() -> None:
    lines = describe_leftovers([
        NodeVolumes("swarmai-n1", LABEL, removed=("dev_cache",)),
        NodeVolumes("swarmai-n2", LABEL, remaining=(VolumeLeft("dev_db", "volume is in use"),
                                                    VolumeLeft("dev_s3", "volume is in use"))),
        NodeVolumes("swarmai-n3", LABEL, down=True, error="node is down: no job sent"),
    ])
    assert len(lines) == 2
    assert lines[0].startswith("node swarmai-n2: ")
    assert "dev_db: volume is in use" in lines[0]
    assert lines[0].endswith("run there: docker volume rm dev_db dev_s3")
    assert lines[1].startswith("node swarmai-n3 is not reachable (node is down: no job sent)")
    assert lines[1].endswith(f"docker volume rm $(docker volume ls -q --filter label={LABEL})")
