"""What a login costs the gateway: Traefik with and without basic auth, in one run.

One real Traefik (swarmai's image), three routes to the same backend (the
HTTP floor app of bench/server.py, on loopback), wrk at saturation on each:
- no login (the baseline);
- the login swarmai generates for `gateway.auth` (swarmai.lifecycle.secrets:
  32 random characters in htpasswd's {SHA} form); target at least 80% of the
  baseline's requests/s;
- the same password as bcrypt at its default cost 12 (what swarmai generated
  before, and what `htpasswd -B` gives), for comparison.

Traefik checks the password of every request and caches nothing, so the
hash's cost is paid per request. Needs the engine, the offline Traefik image
(`swarmai images build --offline`) and wrk.

    .venv/bin/python bench/gateway_auth.py [--seconds 6] [--connections 64]
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bcrypt
import yaml
from server import SETTLE_S, Result, running, wrk

from swarmai.images import image_tags
from swarmai.lifecycle.secrets import secret_values
from swarmai.spec import load_stack

HERE = Path(__file__).resolve().parent
BACKEND_PORT = 18930
GATEWAY_PORT = 18931
CONTAINER = "bench-gateway-auth"
STACK = """\
version: 1
name: benchauth
gateway: {auth: {basic_users_secret: logins}}
models: [{name: m, runtime: fastapi, model: "models:/m@production"}]
"""
REQUEST = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
{authorization}wrk.body = '{{"inputs": [[1, 2, 3, 4]]}}'
"""


def generated_login(folder: Path) -> tuple[str, str, str]:
    """swarmai's own generated login: (user, password, htpasswd line)."""
    stack = folder / "stack.yaml"
    stack.write_text(STACK)
    value = secret_values(load_stack(stack))["logins"]
    assert value.reveal is not None
    user, password = value.reveal.strip().split(":", 1)
    return user, password, value.content.strip()


def traefik_files(folder: Path, sha_line: str, bcrypt_line: str) -> None:
    static = {
        "entryPoints": {"web": {"address": f"127.0.0.1:{GATEWAY_PORT}"}},
        "providers": {"file": {"filename": "/etc/traefik/dynamic.yml"}},
        "log": {"level": "ERROR"},
    }
    backend = {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{BACKEND_PORT}"}]}}
    routers = {
        name: {"rule": f"PathPrefix(`/{name}`)", "entryPoints": ["web"], "service": "floor",
               "middlewares": [name] if name != "open" else []}
        for name in ("open", "sha", "bcrypt")
    }
    dynamic = {"http": {
        "routers": routers,
        "services": {"floor": backend},
        "middlewares": {"sha": {"basicAuth": {"users": [sha_line]}},
                        "bcrypt": {"basicAuth": {"users": [bcrypt_line]}}},
    }}
    (folder / "traefik.yml").write_text(yaml.safe_dump(static))
    (folder / "dynamic.yml").write_text(yaml.safe_dump(dynamic))


def start_traefik(folder: Path) -> None:
    image = image_tags(offline=True)["traefik"]
    subprocess.run(["docker", "rm", "-f", CONTAINER], capture_output=True, check=False)
    subprocess.run(
        ["docker", "run", "-d", "--name", CONTAINER, "--network", "host",
         "-v", f"{folder / 'traefik.yml'}:/etc/traefik/traefik.yml:ro",
         "-v", f"{folder / 'dynamic.yml'}:/etc/traefik/dynamic.yml:ro",
         image, "traefik", "--configFile=/etc/traefik/traefik.yml"],
        check=True, capture_output=True)
    deadline = time.monotonic() + 30
    while subprocess.run(["curl", "-s", "-o", "/dev/null", "-f",
                          f"http://127.0.0.1:{GATEWAY_PORT}/open"], check=False).returncode:
        if time.monotonic() > deadline:
            logs = subprocess.run(["docker", "logs", CONTAINER], capture_output=True, text=True)
            raise SystemExit(f"Traefik did not route /open within 30 s:\n{logs.stderr}")
        time.sleep(0.2)


def measure(folder: Path, route: str, authorization: str, args: argparse.Namespace) -> Result:
    script = folder / f"{route}.lua"
    header = f'wrk.headers["Authorization"] = "{authorization}"\n' if authorization else ""
    script.write_text(REQUEST.format(authorization=header))
    url = f"http://127.0.0.1:{GATEWAY_PORT}/{route}"
    wrk(url, args.connections, 2, script)  # warm-up
    time.sleep(SETTLE_S)
    result = wrk(url, args.connections, args.seconds, script)
    if result.errors:
        raise SystemExit(f"{route}: {result.errors} failed requests: the login was refused?")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6, help="each wrk run")
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="benchauth-"))
    user, password, sha_line = generated_login(folder)
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=12)).decode()
    traefik_files(folder, sha_line, f"{user}:{hashed}")
    basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    floor = [sys.executable, "-m", "uvicorn", "floor_app:app", "--port", str(BACKEND_PORT),
             "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level",
             "warning", "--app-dir", str(HERE)]
    with running(floor, dict(os.environ), f"http://127.0.0.1:{BACKEND_PORT}/",
                 folder / "floor.log"):
        try:
            start_traefik(folder)
            rows = [("no login (baseline)", measure(folder, "open", "", args)),
                    ("swarmai's login ({SHA})", measure(folder, "sha", basic, args)),
                    ("bcrypt cost 12", measure(folder, "bcrypt", basic, args))]
        finally:
            subprocess.run(["docker", "rm", "-f", CONTAINER], capture_output=True, check=False)
    base = rows[0][1].requests_s
    print(f"{'gateway route':26} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>9} {'x req/s':>8}")
    for name, result in rows:
        print(f"{name:26} {result.requests_s:8.0f} {result.p50_ms:8.2f} {result.p99_ms:9.2f} "
              f"{result.requests_s / base:8.2f}")
    print(f"target: swarmai's login at least 0.80x of no login at {args.connections} connections")


if __name__ == "__main__":
    main()
