"""Swarm jobs on each node, on this host's one-node swarm: the facts probe and the
volume cleanup run swarmai's node agent in the server image, and leave nothing."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from swarmai import engine as docker
from swarmai.engine import Engine
from swarmai.images import build_images
from swarmai.lifecycle.doctor import nvidia_swarm_resource
from swarmai.lifecycle.ipvs import kernel_has_ipvs
from swarmai.lifecycle.nodes import cluster_facts, describe_leftovers, remove_stack_volumes

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server_image(docker_cli: str) -> str:
    """swarmai's server image as the source is now: it carries the node agent (seconds
    when present, as scripts/test.sh builds it first)."""
    results = build_images(Engine.from_env(), offline=False, only=["fastapi"])
    return next(r.tag for r in results if r.key == "fastapi")


def job_services(docker_cli: str) -> list[str]:
    found = subprocess.run([docker_cli, "service", "ls", "-q", "--filter",
                            f"label={docker.JOB_LABEL}"], capture_output=True, text=True,
                           check=True)
    return found.stdout.split()


def test_the_facts_job_reports_this_node(docker_cli: str, server_image: str) -> None:
    engine = Engine.from_env()
    info = docker.info(engine)
    started = time.monotonic()
    facts = cluster_facts(engine, probe_image=server_image)
    seconds = time.monotonic() - started
    (node,) = [f for f in facts if f.node_id == info["Swarm"]["NodeID"]]
    assert node.pulled is True and node.probe_error == "", node
    assert node.ipvs is kernel_has_ipvs()
    assert node.runtimes is not None and "runc" in node.runtimes
    assert node.default_runtime == info["DefaultRuntime"]
    assert node.engine_version == info["ServerVersion"]
    assert node.nvidia_swarm_resource == nvidia_swarm_resource()
    assert job_services(docker_cli) == []
    print(f"facts job round trip: {seconds:.1f} s")


@pytest.fixture
def stack_volumes(docker_cli: str, server_image: str) -> Iterator[tuple[str, str, str]]:
    """(stack, free volume, volume in use by a running container), all removed after."""
    stack = f"nodejobs-{uuid.uuid4().hex[:8]}"
    free, used = f"{stack}_free", f"{stack}_used"
    label = f"{docker.NAMESPACE_LABEL}={stack}"

    def run(*args: str) -> None:
        subprocess.run([docker_cli, *args], capture_output=True, text=True, check=True)

    container = f"{stack}-holder"
    try:
        for volume in (free, used):
            run("volume", "create", "--label", label, volume)
        run("run", "-d", "--name", container, "-v", f"{used}:/data", "--network", "none",
            "--entrypoint", "sleep", server_image, "600")
        yield stack, free, used
    finally:
        subprocess.run([docker_cli, "rm", "-f", container], capture_output=True, check=False)
        subprocess.run([docker_cli, "volume", "rm", "-f", free, used], capture_output=True,
                       check=False)


def test_remove_volumes_keeps_and_names_a_volume_in_use(
        docker_cli: str, server_image: str, stack_volumes: tuple[str, str, str]) -> None:
    stack, free, used = stack_volumes
    engine = Engine.from_env()
    (report,) = [r for r in remove_stack_volumes(engine, stack, image=server_image)
                 if r.hostname == docker.info(engine)["Name"]]
    assert report.removed == (free,) and not report.down and report.error == ""
    assert [v.name for v in report.remaining] == [used]
    assert "in use" in report.remaining[0].error
    assert not docker.volume_exists(engine, free) and docker.volume_exists(engine, used)
    (line,) = describe_leftovers([report])
    assert line.startswith(f"node {report.hostname}: ") and line.endswith(
        f"docker volume rm {used}")
    assert job_services(docker_cli) == []
