"""doctor against the real engine that scripts/test.sh installed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lifecycle import swarmai

pytestmark = pytest.mark.e2e


def test_doctor_reports_this_engine(docker_cli: str) -> None:
    result = swarmai("doctor", "--output", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert int(report["engine_version"].split(".")[0]) >= 26
    assert report["compose_version"] != "missing"
    assert report["swarm_state"] == "active" and report["swarm_manager"] is True
    assert report["ipvs"] == Path("/proc/net/ip_vs").exists()
    assert report["endpoint_mode"] == ("vip (routing mesh)" if report["ipvs"]
                                       else "dnsrr + host-mode ports")
    # scripts/fake-gpus.sh advertises GPUs on a host without the NVIDIA
    # runtime: doctor must say exactly that, and nothing else.
    advertised = any(report["node_resources"].values())
    expected = ["nvidia runtime is not installed"] if advertised else []
    assert [p for p in expected if not any(p in q for q in report["problems"])] == []
    assert len(report["problems"]) == len(expected), report["problems"]
