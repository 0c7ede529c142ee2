"""doctor's checks that need no engine."""

from __future__ import annotations

from pathlib import Path

from swarmai.lifecycle.doctor import Diagnosis, _problems, nvidia_swarm_resource


def test_swarm_resource_is_read_from_the_top_level_only(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('disable-require = false\nswarm-resource = "DOCKER_RESOURCE_GPU"\n'
                      '[nvidia-container-cli]\nswarm-resource = "ignored"\n')
    assert nvidia_swarm_resource(config) == "DOCKER_RESOURCE_GPU"
    config.write_text('#swarm-resource = "DOCKER_RESOURCE_GPU"\n[x]\nswarm-resource = "y"\n')
    assert nvidia_swarm_resource(config) == ""
    assert nvidia_swarm_resource(tmp_path / "missing.toml") == ""


def test_problems_name_what_to_fix() -> None:
    diagnosis = Diagnosis(engine_version="20.10.24", compose_version="missing",
                          swarm_state="inactive", swarm_manager=False, ipvs=False,
                          endpoint_mode="dnsrr", runtimes=["runc"], default_runtime="runc",
                          swarm_resource="DOCKER_RESOURCE_GPU",
                          node_resources={"gpu-a": ["swarmai-gpu-gpu-a-0=1"]})
    problems = "\n".join(_problems(diagnosis))
    assert "scripts/install-engine.sh" in problems
    assert "Compose v2 is missing" in problems
    assert "docker swarm init" in problems
    assert "nvidia runtime is not installed" in problems
    assert "swarm-resource" in problems
