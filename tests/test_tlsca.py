"""swarmai's local CA, against Python's real TLS stack: what it issues verifies, and only so."""

from __future__ import annotations

import http.server
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from swarmai import tlsca
from swarmai.errors import OperationError
from swarmai.lifecycle.routes import client_context, open_route, public_url
from swarmai.spec import Stack


def test_the_ca_is_made_once_and_its_key_is_private(tmp_path: Path) -> None:
    first = tlsca.ensure_ca(tmp_path / "ca")
    again = tlsca.ensure_ca(tmp_path / "ca")
    assert first.created and not again.created
    assert again.cert.read_bytes() == first.cert.read_bytes()
    assert stat.S_IMODE(first.key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca").stat().st_mode) == 0o700


def test_half_a_ca_is_refused_rather_than_replaced(tmp_path: Path) -> None:
    ca = tlsca.ensure_ca(tmp_path / "ca")
    ca.cert.unlink()
    with pytest.raises(OperationError, match=r"holds only one of ca\.pem and ca-key\.pem"):
        tlsca.ensure_ca(tmp_path / "ca")
    assert ca.key.exists()


def test_one_pem_holds_the_key_then_the_certificate(tmp_path: Path) -> None:
    ca = tlsca.ensure_ca(tmp_path / "ca")
    pem = tlsca.issue(ca, ["localhost"])
    blocks = [line for line in pem.splitlines() if line.startswith("-----BEGIN")]
    assert blocks == ["-----BEGIN PRIVATE KEY-----", "-----BEGIN CERTIFICATE-----"]
    assert ca.cert.read_text() not in pem


@contextmanager
def https_server(pem: str, folder: Path) -> Iterator[int]:
    """A real HTTPS server on loopback presenting ``pem``; answers 200 "ok"."""
    (folder / "server.pem").write_text(pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # The same file for both, as Traefik is given it.
    context.load_cert_chain(folder / "server.pem", folder / "server.pem")

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _get(port: int, host: str, cafile: Path) -> bytes:
    context = ssl.create_default_context(cafile=str(cafile))
    with context.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                             server_hostname=host) as tls:
        tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
        return tls.recv(1024)


def test_a_client_trusting_the_ca_verifies_each_name_and_no_other(tmp_path: Path) -> None:
    ca = tlsca.ensure_ca(tmp_path / "ca")
    pem = tlsca.issue(ca, ["localhost", "127.0.0.1", "models.example.com"])
    with https_server(pem, tmp_path) as port:
        for name in ("localhost", "127.0.0.1", "models.example.com"):
            assert _get(port, name, ca.cert).startswith(b"HTTP/1.0 200")
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
            _get(port, "other.example.com", ca.cert)
        stranger = tlsca.ensure_ca(tmp_path / "another-ca")
        with pytest.raises(ssl.SSLCertVerificationError, match="local issuer"):
            _get(port, "localhost", stranger.cert)


def test_swarmais_own_requests_trust_the_local_ca(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tlsca.CA_DIR_ENV, str(tmp_path / "ca"))
    ca = tlsca.ensure_ca()
    with https_server(tlsca.issue(ca, tlsca.default_names()), tmp_path) as port:
        stack = Stack.model_validate({"version": 1, "name": "s", "gateway": {"https_port": port},
                                      "models": [{"name": "m", "runtime": "app",
                                                  "app": {"image": "me/app:1"}}]})
        url = public_url(stack, stack.models[0], "127.0.0.1")
        assert url == f"https://127.0.0.1:{port}/models/m"
        with open_route(stack, url, timeout=5) as response:
            assert response.read() == b"ok"
    monkeypatch.setenv(tlsca.CA_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(OperationError, match="there is none at"):
        open_route(stack, url, timeout=5)


def test_the_client_context_is_made_once_per_ca_file(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tlsca.CA_DIR_ENV, str(tmp_path / "ca"))
    tlsca.ensure_ca()
    stack = Stack.model_validate({"version": 1, "name": "s", "models": [
        {"name": "m", "runtime": "app", "app": {"image": "me/app:1"}}]})
    first = client_context(stack)
    assert first is not None and client_context(stack) is first  # the checks poll
    # A CA made anew (another folder: another file) is trusted at once.
    monkeypatch.setenv(tlsca.CA_DIR_ENV, str(tmp_path / "other-ca"))
    tlsca.ensure_ca()
    assert client_context(stack) is not first


def test_urls_follow_the_tls_mode() -> None:
    def url(gateway: dict[str, object], host: str = "h") -> str:
        stack = Stack.model_validate({"version": 1, "name": "s", "gateway": gateway,
                                      "models": [{"name": "m", "runtime": "app",
                                                  "app": {"image": "me/app:1"}}]})
        return public_url(stack, stack.models[0], host)

    assert url({}) == "https://h/models/m"
    assert url({"port": 8080, "https_port": 8443}) == "https://h:8443/models/m"
    assert url({"tls": {"mode": "off"}}) == "http://h/models/m"
    assert url({"port": 8080, "tls": {"mode": "off"}}) == "http://h:8080/models/m"
    assert url({}, "::1") == "https://[::1]/models/m"
