"""`swarmai plan` against the real engine, the same stack and edits on Swarm and Compose.

Per target: deploy (with --plan: the plan is printed first), then `plan` says "no
changes" (exit 0); the stack edited (replicas 1 -> 2, a memory limit, a route) gives
exactly those changes and which services restart (exit 3); a new version pushed under
the alias gives the version change; JSON agrees with the text; the edits applied,
plan says "no changes" again and the edited route serves; `swarmai logs` of its two
replicas is checked there too (logs_checks.py: one deployment serves both).  Both targets list the
same changed fields; only `restarts` may differ (README: "swarmai plan").  No output
of any of these commands holds a generated secret value.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
from pathlib import Path
from typing import Any

import pytest
from lifecycle import engine_snapshot, post, swarmai, wait_until
from logs_checks import check_logs
from test_promotion import MAKE_MODELS, PAYLOAD

from swarmai.lifecycle.plan import format_text

pytestmark = pytest.mark.e2e

NAME = "e2eplan"
PORT = 18695
STACK = f"""\
version: 1
name: {NAME}
gateway: {{port: {PORT}, tls: {{mode: "off"}}}}
storage: {{backend: seaweedfs, bucket: models, credentials_secret: {NAME}-s3}}
registry: {{backend_store: sqlite}}
models:
  - name: scorer
    runtime: fastapi
    model: models:/scorer@production
    route: /scorer
    server: {{access_log: 1}}  # logs_checks reads the requests' lines
    resources: {{memory: 700M}}
"""
EDITED = (STACK.replace("route: /scorer", "route: /scored")
          .replace("memory: 700M", "memory: 800M")
          .replace("    resources:", "    replicas: 2\n    resources:"))
ROUTE_LABEL = f"labels.traefik.http.routers.{NAME}-scorer.rule"


def _rule(route: str) -> str:
    """The router rule swarmai renders for ``route`` (private paths excluded)."""
    return (f"(Path(`{route}`) || PathPrefix(`{route}/`)) && !PathRegexp(`^{route}/"
            r"(metrics|docs|redoc|openapi\.json|monitoring)([/;%].*)?$`)")
ROUTES_CONFIG = "configs./etc/traefik/dynamic/routes.yml"


def _fields(data: dict[str, Any]) -> list[tuple[str, str, str, list[tuple[str, Any, Any]]]]:
    """The changes of a plan's JSON without their restart flags."""
    return [(c["kind"], c["name"], c["action"],
             [(f["field"], f["before"], f["after"]) for f in c["fields"]])
            for c in data["changes"]]


def _secret_values(target: str, state: Path) -> list[str]:
    """The generated secret values (Compose: the state directory's files; Swarm: read
    where a task sees them, since the engine never gives a secret back)."""
    if target == "compose":
        texts = [p.read_text() for p in (state / "secrets").iterdir() if p.is_file()]
    else:
        container = subprocess.run(
            ["docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={NAME}_s3"],
            capture_output=True, text=True, check=True).stdout.split()[0]
        texts = [subprocess.run(["docker", "exec", container, "cat", f"/run/secrets/{NAME}-s3"],
                                capture_output=True, text=True, check=True).stdout]
    tokens = [t for text in texts for t in text.replace("=", " ").split() if len(t) >= 12]
    assert tokens, f"no generated secret found for {target}"
    return tokens


def _status(path: str) -> int:
    """The gateway's status for a prediction on ``path``, once it has the route (or 404)."""
    def answered() -> int | None:
        try:
            return post(f"http://127.0.0.1:{PORT}{path}", PAYLOAD)[0]
        except urllib.error.HTTPError as error:
            return None if error.code in (502, 503) else error.code
    status: int = wait_until(answered, 30, f"an answer on {path}")
    return status


def _ours() -> dict[str, set[str]]:
    """What this test's stack has on the engine (other tests may run beside it)."""
    return {kind: {name for name in names if NAME in name}
            for kind, names in engine_snapshot().items()}


def _exercise(target: str, root: Path) -> dict[str, Any]:
    """Deploy the stack on ``target``, plan it three ways, remove it; what plan said."""
    stack, edited = root / f"{target}.yaml", root / f"{target}-edited.yaml"
    stack.write_text(STACK)
    edited.write_text(EDITED)
    state = root / f"state-{target}"
    start = ["deploy"] if target == "swarm" else ["up"]
    stop = ["rm", str(stack), "--volumes"] if target == "swarm" else [
        "down", str(stack), "--volumes", "--state-dir", str(state)]
    flags = ["--offline", "--state-dir", str(state)]
    push_flags = ["--offline", *(["-t", "compose"] if target == "compose" else [])]
    plan_flags = ["-t", target, *flags]
    outputs: list[str] = []

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        result = swarmai(*args)
        outputs.append(result.stdout + result.stderr)
        return result

    swarmai(*stop)  # a previous run's leftovers, if any
    before = _ours()
    found: dict[str, Any] = {}
    try:
        assert run(*start, str(stack), *flags).returncode == 1  # the registry is empty
        pushed = run("models", "push", str(stack), "scorer", str(root / "v1.pkl"),
                     "--alias", "production", *push_flags)
        assert pushed.returncode == 0, pushed.stderr
        started = run(*start, str(stack), *flags, "--plan")
        assert started.returncode == 0, started.stderr
        found["deploy_plan"] = started.stderr
        assert f"stack {NAME} ({target}): 0 to change, " in started.stderr
        assert "+ service model-scorer" in started.stderr and "+ service" not in started.stdout

        unchanged = run("plan", str(stack), *plan_flags)
        assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
        assert unchanged.stdout.startswith(f"stack {NAME} ({target}): no changes\n")
        assert "registry: 1  running: 1" in unchanged.stdout
        found["unchanged"] = unchanged.stdout

        text = run("plan", str(edited), *plan_flags)
        as_json = run("plan", str(edited), *plan_flags, "-o", "json")
        assert (text.returncode, as_json.returncode) == (3, 3), text.stderr + as_json.stderr
        found["edited"] = json.loads(as_json.stdout)
        assert format_text(found["edited"]) == text.stdout.rstrip("\n")
        found["edited_text"] = text.stdout

        pushed = run("models", "push", str(stack), "scorer", str(root / "v2.pkl"),
                     "--alias", "production", *push_flags)
        assert pushed.returncode == 0, pushed.stderr
        bumped = run("plan", str(stack), *plan_flags, "-o", "json")
        assert bumped.returncode == 3, bumped.stderr
        found["bumped"] = json.loads(bumped.stdout)
        found["bumped_text"] = format_text(found["bumped"])

        # Applying the edits leaves nothing to plan, and the edited route serves
        # (the gateway reads the new routes file: Compose re-created it).
        applied = run(*start, str(edited), *flags)
        assert applied.returncode == 0, applied.stderr
        again = run("plan", str(edited), *plan_flags)
        assert again.returncode == 0, again.stdout + again.stderr
        assert again.stdout.startswith(f"stack {NAME} ({target}): no changes\n")
        assert _status("/scored/v1/predict") == 200
        assert _status("/scorer/v1/predict") == 404
        check_logs(edited, target, PORT, "/scored", "2")  # the two replicas it now runs

        secrets = _secret_values(target, state)
        leaked = [t for t in secrets for output in outputs if t in output]
        assert not leaked, f"plan output holds a secret value on {target}"
    finally:
        swarmai(*stop)
    assert _ours() == before
    return found


def test_plan_on_swarm_and_compose(tmp_path: Path, offline_images: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-c", MAKE_MODELS, str(tmp_path), "1000"], check=True)
    plans = {target: _exercise(target, tmp_path) for target in ("swarm", "compose")}
    for target, found in plans.items():
        print(f"--- {target}: deploy --plan (stderr)\n{found['deploy_plan']}"
              f"--- {target}: plan, unchanged\n{found['unchanged']}"
              f"--- {target}: plan, edited\n{found['edited_text']}"
              f"--- {target}: plan, v2 pushed under the alias\n{found['bumped_text']}")

    swarm, compose = plans["swarm"]["edited"], plans["compose"]["edited"]
    assert _fields(swarm) == _fields(compose)  # the same edits, the same changes
    assert _fields(swarm) == [
        ("service", "gateway", "change",
         [(ROUTES_CONFIG, *_config_change(swarm))]),
        ("service", "model-scorer", "change",
         [("replicas", "1", "2"), ("resources.limits.memory", "700M", "800M"),
          (ROUTE_LABEL, _rule("/scorer"), _rule("/scored"))]),
        ("config", "traefik-routes", "change", [("content", *_config_change(swarm))]),
    ]
    # What restarts, truthfully per target: Swarm rolls the gateway onto its new config
    # and updates the route label in place; Compose re-creates a container whose labels
    # changed, and one whose mounted files did (swarmai labels it with their hash).
    restarts = {t: {(c["name"], f["field"]): f["restarts"] for c in plans[t]["edited"]["changes"]
                    for f in c["fields"]} for t in plans}
    assert restarts["swarm"][("model-scorer", ROUTE_LABEL)] is False
    assert restarts["compose"][("model-scorer", ROUTE_LABEL)] is True
    assert restarts["swarm"][("gateway", ROUTES_CONFIG)] is True
    assert restarts["compose"][("gateway", ROUTES_CONFIG)] is True
    for target in plans:
        assert restarts[target][("model-scorer", "replicas")] is False
        assert restarts[target][("model-scorer", "resources.limits.memory")] is True
        services = {c["name"]: c["restarts"] for c in plans[target]["edited"]["changes"]
                    if c["kind"] == "service"}
        assert services["model-scorer"] is True

    for target, found in plans.items():
        bumped = found["bumped"]
        assert _fields(bumped) == [("service", "model-scorer", "change",
                                    [("version", "1", "2")])], target
        assert [(m["model"], m["registry"], m["running"]) for m in bumped["models"]] == [
            ("scorer", "2", "1")]


def _config_change(plan: dict[str, Any]) -> tuple[str, str]:
    [config] = [c for c in plan["changes"] if c["kind"] == "config"]
    before, after = config["fields"][0]["before"], config["fields"][0]["after"]
    assert before != after and len(after) == 12
    return before, after
