"""The node agent without a node: a fake /proc, a fake /etc and a fake engine socket."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from swarmai.incontainer import nodeagent
from swarmai.lifecycle import doctor

NVIDIA = "nvidia-container-runtime/config.toml"


def fake_proc(tmp_path: Path, modules: str, ip_vs: bool = False) -> Path:
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    (proc / "modules").write_text(modules)
    if ip_vs:
        (proc / "net" / "ip_vs").write_text("IP Virtual Server version 1.2.1\n")
    return proc


def test_ipvs_from_the_module_list_or_the_proc_file(tmp_path: Path) -> None:
    assert nodeagent.kernel_has_ipvs(fake_proc(tmp_path / "a", "ip_vs 180224 0 - Live\n"))
    assert nodeagent.kernel_has_ipvs(fake_proc(tmp_path / "b", "", ip_vs=True))
    assert not nodeagent.kernel_has_ipvs(fake_proc(tmp_path / "c", "ip_vs_rr 16384 0\n"))
    assert not nodeagent.kernel_has_ipvs(tmp_path / "no-proc")


@pytest.mark.parametrize("text", [
    'disable-require = false\nswarm-resource = "DOCKER_RESOURCE_GPU"\n[x]\n',
    '  swarm-resource = ""\n',
    '#swarm-resource = "A"\n[nvidia-container-cli]\nswarm-resource = "B"\n',
    "[only]\nswarm-resource = \"C\"\n",
    "",
])
def test_swarm_resource_rule_is_the_doctors(tmp_path: Path, text: str) -> None:
    """Duplicated across the layer boundary: both copies must read a file alike."""
    config = tmp_path / "config.toml"
    config.write_text(text)
    assert nodeagent.nvidia_swarm_resource(config) == doctor.nvidia_swarm_resource(config)


def test_facts_without_engine_socket_or_host_etc(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, "ip_vs 1 0\n")
    found = nodeagent.facts(proc, tmp_path / "no-etc", tmp_path / "no.sock")
    assert found == {"ipvs": True, "nvidia_swarm_resource": None, "engine_version": None,
                     "runtimes": None, "default_runtime": None, "engine_error": ""}
    etc = tmp_path / "etc"
    (etc / NVIDIA).parent.mkdir(parents=True)
    assert nodeagent.facts(proc, etc, tmp_path / "no.sock")["nvidia_swarm_resource"] == ""
    (etc / NVIDIA).write_text('swarm-resource = "DOCKER_RESOURCE_GPU"\n')
    assert nodeagent.facts(proc, etc, tmp_path / "no.sock")["nvidia_swarm_resource"] == (
        "DOCKER_RESOURCE_GPU")


class FakeEngine:
    """Answers /info, GET /volumes and DELETE /volumes/NAME like the Docker API."""

    def __init__(self) -> None:
        self.volumes = {"dev_db": {"com.docker.stack.namespace": "dev"},
                        "dev_cache": {"com.docker.stack.namespace": "dev"},
                        "other": {"com.docker.stack.namespace": "prod"}}
        self.in_use = {"dev_db"}
        self.filters: list[Any] = []

    def answer(self, method: str, path: str) -> tuple[int, Any]:
        url = urlparse(path)
        if method == "GET" and url.path == "/info":
            return 200, {"ServerVersion": "26.1.5", "DefaultRuntime": "runc",
                         "Runtimes": {"runc": {}, "nvidia": {}}}
        if method == "GET" and url.path == "/volumes":
            (label,) = json.loads(parse_qs(url.query)["filters"][0])["label"]
            self.filters.append(label)
            key, value = label.split("=")
            return 200, {"Volumes": [{"Name": n} for n, labels in self.volumes.items()
                                     if labels.get(key) == value]}
        name = url.path.removeprefix("/volumes/")
        if name in self.in_use:
            return 409, {"message": f"remove {name}: volume is in use - [abc123]"}
        self.volumes.pop(name)
        return 204, None


@pytest.fixture
def engine_socket(tmp_path: Path) -> Iterator[tuple[Path, FakeEngine]]:
    engine = FakeEngine()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def address_string(self) -> str:
            return "unix"  # the base class formats a (host, port) pair

        def _reply(self) -> None:
            status, body = engine.answer(self.command, self.path)
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_DELETE = _reply

        def log_message(self, *args: object) -> None:
            pass

    path = tmp_path / "docker.sock"
    server = socketserver.ThreadingUnixStreamServer(str(path), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield path, engine
    finally:
        server.shutdown()
        server.server_close()


def test_facts_ask_the_engine_on_its_socket(tmp_path: Path,
                                            engine_socket: tuple[Path, FakeEngine]) -> None:
    sock, _ = engine_socket
    found = nodeagent.facts(fake_proc(tmp_path, ""), tmp_path / "no-etc", sock)
    assert found["engine_version"] == "26.1.5"
    assert found["runtimes"] == ["nvidia", "runc"] and found["default_runtime"] == "runc"
    assert found["ipvs"] is False and found["engine_error"] == ""


def test_remove_volumes_keeps_what_is_in_use(engine_socket: tuple[Path, FakeEngine]) -> None:
    sock, engine = engine_socket
    report = nodeagent.remove_volumes("com.docker.stack.namespace=dev", sock)
    assert engine.filters == ["com.docker.stack.namespace=dev"]
    assert report["removed"] == ["dev_cache"]
    assert report["remaining"] == [
        {"name": "dev_db", "error": "remove dev_db: volume is in use - [abc123]"}]
    assert set(engine.volumes) == {"dev_db", "other"}


def test_main_prints_one_json_object(capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nodeagent, "facts", lambda: {"ipvs": False})
    assert nodeagent.main(["facts"]) == 0
    assert json.loads(capsys.readouterr().out) == {"ipvs": False}
    assert nodeagent.main(["remove-volumes"]) == 2
    assert nodeagent.main(["remove-volumes", "no-equals-sign"]) == 2
    assert "usage:" in capsys.readouterr().err


def test_main_reports_an_unreachable_engine(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nodeagent, "DOCKER_SOCKET", tmp_path / "missing.sock")
    monkeypatch.setattr(nodeagent.remove_volumes, "__defaults__", (tmp_path / "missing.sock",))
    assert nodeagent.main(["remove-volumes", "a=b"]) == 1
    assert "nodeagent:" in capsys.readouterr().err
