"""What only a node itself knows, and node-local cleanup: run as a one-shot Swarm job.

The manager reaches a worker only through Swarm, so swarmai runs this module on
each node as a short-lived job (``python -m swarmai.incontainer.nodeagent``, in
swarmai's server image) and reads its one JSON answer from the job's log:

- ``facts``: does the kernel have IPVS, which runtimes the node's engine has,
  and the NVIDIA hook's ``swarm-resource`` setting;
- ``remove-volumes LABEL=VALUE``: delete the volumes carrying that label on
  this node (a stack's volumes, after ``swarmai rm --volumes``).

Standard library only, and nothing host-side (tests/test_layers.py): the host
and this module share only the JSON they exchange.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import sys
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DOCKER_SOCKET = Path("/var/run/docker.sock")
# The node's /etc, mounted read-only by the job that asks for facts.
HOST_ETC = Path("/host/etc")
NVIDIA_CONFIG = Path("nvidia-container-runtime/config.toml")
_TIMEOUT_S = 30.0


class _UnixConnection(http.client.HTTPConnection):
    """HTTP/1.1 to the engine over its unix socket (no HTTP client library in here)."""

    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=_TIMEOUT_S)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(_TIMEOUT_S)
        sock.connect(str(self._path))
        self.sock = sock


def engine_request(method: str, path: str, sock: Path = DOCKER_SOCKET) -> tuple[int, Any]:
    """(HTTP status, decoded JSON body or None) of one Docker API call."""
    connection = _UnixConnection(sock)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    return response.status, json.loads(body) if body.strip() else None


def kernel_has_ipvs(proc: Path = Path("/proc")) -> bool:
    """True when the node's kernel has IPVS (Swarm's routing mesh and VIPs need it).

    /proc/modules is not namespaced, so a container sees the node's modules;
    /proc/net/ip_vs exists in every network namespace once IPVS is loaded or built in.
    """
    if (proc / "net" / "ip_vs").exists():
        return True
    try:
        lines = (proc / "modules").read_text(encoding="utf-8").splitlines()
    except OSError:
        return False
    return any(line.startswith("ip_vs ") for line in lines)


def nvidia_swarm_resource(path: Path) -> str:
    """The NVIDIA runtime's top-level ``swarm-resource`` ("" when unset or no file).

    The twin of swarmai.lifecycle.doctor.nvidia_swarm_resource: duplicated, as
    the layers forbid either side importing the other; a test keeps them equal.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return ""
    for line in text.splitlines():
        if line.strip().startswith("["):
            break  # top-level keys end at the first table
        match = re.match(r"\s*swarm-resource\s*=\s*\"([^\"]*)\"", line)
        if match:
            return match.group(1)
    return ""


def facts(proc: Path = Path("/proc"), etc: Path = HOST_ETC,
          sock: Path = DOCKER_SOCKET) -> dict[str, Any]:
    """The node's facts as one JSON-ready object; None for what was not mounted."""
    found: dict[str, Any] = {
        "ipvs": kernel_has_ipvs(proc),
        "nvidia_swarm_resource": nvidia_swarm_resource(etc / NVIDIA_CONFIG)
        if etc.is_dir() else None,
        "engine_version": None, "runtimes": None, "default_runtime": None, "engine_error": "",
    }
    if not sock.exists():
        return found
    try:
        status, info = engine_request("GET", "/info", sock)
    except (OSError, ValueError) as error:
        found["engine_error"] = f"asking the engine for /info failed: {error}"
        return found
    if status != 200 or not isinstance(info, dict):
        found["engine_error"] = f"the engine answered /info with HTTP {status}: {info}"
        return found
    found["engine_version"] = str(info.get("ServerVersion", ""))
    found["runtimes"] = sorted(info.get("Runtimes") or {})
    found["default_runtime"] = str(info.get("DefaultRuntime", ""))
    return found


def remove_volumes(label: str, sock: Path = DOCKER_SOCKET) -> dict[str, Any]:
    """Delete this node's volumes labelled ``label`` (``key=value``); report what stayed.

    A volume in use stays, with the engine's reason: the host reports it and
    names the command to run once whatever holds it is gone.
    """
    query = urllib.parse.urlencode({"filters": json.dumps({"label": [label]})})
    status, listing = engine_request("GET", f"/volumes?{query}", sock)
    if status != 200 or not isinstance(listing, dict):
        raise RuntimeError(f"listing volumes failed: HTTP {status}: {listing}")
    removed: list[str] = []
    remaining: list[dict[str, str]] = []
    for name in sorted(v["Name"] for v in listing.get("Volumes") or []):
        status, answer = engine_request("DELETE", f"/volumes/{urllib.parse.quote(name)}", sock)
        if status in (204, 404):  # 404: gone meanwhile, which is what was asked
            removed.append(name)
        else:
            message = answer.get("message") if isinstance(answer, dict) else answer
            remaining.append({"name": name, "error": str(message or f"HTTP {status}")})
    return {"removed": removed, "remaining": remaining}


_USAGE = "usage: python -m swarmai.incontainer.nodeagent facts | remove-volumes LABEL=VALUE"


def main(argv: Sequence[str]) -> int:
    """Print one JSON object on stdout; exit 2 on a wrong command line, 1 when it failed."""
    if argv[:1] == ["facts"] and len(argv) == 1:
        answer = facts()
    elif argv[:1] == ["remove-volumes"] and len(argv) == 2 and "=" in argv[1]:
        try:
            answer = remove_volumes(argv[1])
        except (OSError, ValueError, RuntimeError) as error:
            print(f"nodeagent: {error}", file=sys.stderr)
            return 1
    else:
        print(_USAGE, file=sys.stderr)
        return 2
    print(json.dumps(answer, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
