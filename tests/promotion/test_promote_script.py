"""scripts/promote_models.py as cron runs it, against a fake swarmai executable.

The fake answers ``models describe`` from a JSON registry file and records
every call; its ``promote`` moves the alias in that file (so a re-run sees the
promotion), can fail like a rolled-back promotion, and can wait for a file so
two overlapping runs are really concurrent.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "promote_models.py"

FAKE_SWARMAI = """\
#!{python}
import json, os, pathlib, sys, time

import yaml

HERE = pathlib.Path(__file__).parent
STATE = HERE / "registry.json"


def registered_name(stack, model):
    for entry in yaml.safe_load(open(stack))["models"]:
        if entry["name"] == model:
            return entry["model"].removeprefix("models:/").split("@")[0].split("/")[0]
    raise SystemExit(f"error: no model {{model}} in {{stack}}")


def describe(state, name):
    if state.get("describe_error"):
        print("error: MLflow is unreachable: Connection refused", file=sys.stderr)
        return 1
    model = state["models"][name]
    versions = {{v: {{"version": v, "run_id": "run" + v, "metrics": m}}
                for v, m in model["metrics"].items()}}
    print(json.dumps({{"name": name, "aliases": model["aliases"], "tags": model.get("tags", {{}}),
                      "versions": versions}}, indent=2))
    return 0


def resume(state, stack, model, alias):
    if state.get("promote_busy"):
        print("error: another promotion of stack demo is in progress", file=sys.stderr)
        return 75
    entry = state["models"][registered_name(stack, model)]
    entry.get("tags", {{}}).pop("swarmai.pending." + alias, None)
    STATE.write_text(json.dumps(state))
    print(json.dumps({{"model": model, "alias": alias, "action": "unchanged",
                      "version": entry["aliases"][alias], "changed": True,
                      "resumed": "finished", "seconds": 8.5}}))
    return 0


def promote(state, stack, model, alias, version):
    if state.get("promote_busy"):
        print("error: another promotion of stack demo is in progress (`swarmai promote`, "
              "pid 7 on vm)", file=sys.stderr)
        return 75
    release = state.get("promote_waits_for")
    if release:
        deadline = time.time() + 60
        while not os.path.exists(release) and time.time() < deadline:
            time.sleep(0.05)
    if model in state.get("promote_fails", []):
        print("rolling iris...", file=sys.stderr)
        print(f"error: {{model}} version {{version}} failed its health check; "
              "rolled back to the previous version", file=sys.stderr)
        return 1
    aliases = state["models"][registered_name(stack, model)]["aliases"]
    previous = aliases.get(alias)
    aliases[alias] = version
    STATE.write_text(json.dumps(state))
    print(json.dumps({{"model": model, "registered_name": registered_name(stack, model),
                      "alias": alias, "action": "promoted", "version": version,
                      "previous": previous, "changed": previous != version,
                      "canary_percent": None, "seconds": 12.5}}))
    return 0


def main(argv):
    with open(HERE / "calls.jsonl", "a") as calls:
        calls.write(json.dumps(argv) + "\\n")
    state = json.loads(STATE.read_text())
    if argv[:2] == ["models", "describe"]:
        return describe(state, argv[3])
    if argv[0] == "promote" and "--resume" in argv:
        return resume(state, argv[1], argv[2], argv[argv.index("--to") + 1])
    if argv[0] == "promote":
        return promote(state, argv[1], argv[2], argv[argv.index("--to") + 1],
                       argv[argv.index("--version") + 1])
    print(f"error: unexpected call {{argv}}", file=sys.stderr)
    return 2


sys.exit(main(sys.argv[1:]))
"""

POLICY = """\
version: 1
stack: stack.yaml
target: compose
offline: true
models:
  - model: iris
    from: staging
    to: production
    metric: accuracy
    compare: higher
    min: 0.9
  - model: churn
    from: staging
    to: production
    metric: log_loss
    compare: lower
    max: 0.45
"""

# iris: staging (2) beats production (1); churn-clf: staging (5) is worse than production (4).
REGISTRY: dict[str, Any] = {"models": {
    "iris": {"aliases": {"production": "1", "staging": "2"},
             "metrics": {"1": {"accuracy": 0.93}, "2": {"accuracy": 0.97}}},
    "churn-clf": {"aliases": {"production": "4", "staging": "5"},
                  "metrics": {"4": {"log_loss": 0.30}, "5": {"log_loss": 0.35}}},
}}


@pytest.fixture
def box(tmp_path: Path) -> Path:
    """tmp_path with a stack (dev.yaml, churn registered as churn-clf), a policy, a fake
    swarmai and its registry."""
    stack = (REPO / "stacks/dev.yaml").read_text(encoding="utf-8")
    (tmp_path / "stack.yaml").write_text(
        stack.replace("models:/churn@production", "models:/churn-clf@production"))
    (tmp_path / "policy.yaml").write_text(POLICY)
    fake = tmp_path / "swarmai"
    fake.write_text(FAKE_SWARMAI.format(python=sys.executable))
    fake.chmod(0o755)
    set_registry(tmp_path, {})
    return tmp_path


def set_registry(box: Path, extra: dict[str, Any]) -> None:
    (box / "registry.json").write_text(json.dumps({**REGISTRY, **extra}))


def command(box: Path, *args: str) -> list[str]:
    return [sys.executable, str(SCRIPT), "policy.yaml", "--swarmai", str(box / "swarmai"), *args]


def run(box: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(box, *args), cwd=box, capture_output=True, text=True,
                          timeout=120, check=False)


def calls(box: Path) -> list[list[str]]:
    path = box / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def promotions(box: Path) -> list[list[str]]:
    return [call for call in calls(box) if call[0] == "promote"]


def audit(box: Path) -> list[dict[str, Any]]:
    path = box / "policy.audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def by_run(lines: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        runs[line["run_id"]].append(line)
    return dict(runs)


def test_promotes_the_better_candidate_and_rejects_the_worse(box: Path) -> None:
    done = run(box)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    stack = str(box / "stack.yaml")
    common = ["-t", "compose", "--offline", "--output", "json"]
    assert calls(box) == [
        ["models", "describe", stack, "iris", *common],
        ["promote", stack, "iris", "--to", "production", "--version", "2", *common],
        ["models", "describe", stack, "churn-clf", *common],
    ]
    started, iris, churn = audit(box)
    # Written before swarmai promote ran: a run killed during it leaves this much.
    assert (started["decision"], started["candidate"], started["changed"]) == (
        "started", "2", None)
    assert started["reason"] == iris["reason"] and started["run_id"] == iris["run_id"]
    assert iris["run_id"] == churn["run_id"] and len(iris["run_id"]) == 32
    assert iris["time"].endswith("Z") and iris["host"] and iris["dry_run"] is False
    assert iris["policy"] == str(box / "policy.yaml") and iris["stack"] == stack
    assert {k: iris[k] for k in ("model", "registered_name", "from", "to", "metric", "decision",
                                 "candidate", "current", "candidate_value", "current_value",
                                 "changed", "previous", "seconds", "exit_code", "error")} == {
        "model": "iris", "registered_name": "iris", "from": "staging", "to": "production",
        "metric": "accuracy", "decision": "promoted", "candidate": "2", "current": "1",
        "candidate_value": 0.97, "current_value": 0.93, "changed": True, "previous": "1",
        "seconds": 12.5, "exit_code": 0, "error": None}
    assert iris["reason"] == ("accuracy 0.97 of version 2 (>= min 0.9) beats 0.93 of version 1 "
                              "(production)")
    assert (churn["model"], churn["registered_name"], churn["decision"]) == (
        "churn", "churn-clf", "rejected")
    assert churn["reason"] == ("log_loss 0.35 of version 5 (<= max 0.45) is not lower than 0.3 "
                               "of version 4 (production)")
    assert done.stdout.splitlines() == [f"iris: promoted: {iris['reason']}",
                                        f"churn: rejected: {churn['reason']}"]


def test_state_dir_is_passed_to_promote_only(box: Path) -> None:
    (box / "policy.yaml").write_text(POLICY.replace("offline: true", "state_dir: /srv/state"))
    assert run(box).returncode == 0
    describe, promote, _ = calls(box)
    assert "--state-dir" not in describe and "--offline" not in describe
    assert promote[-6:] == ["-t", "compose", "--output", "json", "--state-dir", "/srv/state"]


def test_a_rerun_is_up_to_date_and_calls_no_promote(box: Path) -> None:
    assert run(box).returncode == 0
    again = run(box)
    assert again.returncode == 0, again.stderr
    assert len(promotions(box)) == 1
    _, second = by_run(audit(box)).values()
    assert [line["decision"] for line in second] == ["up-to-date", "rejected"]
    assert second[0]["reason"] == "production already points at version 2 (staging's version)"
    assert "iris: up-to-date" in again.stdout


def test_a_failed_promotion_exits_1_and_audits_swarmai_message(box: Path) -> None:
    set_registry(box, {"promote_fails": ["iris"]})
    done = run(box)
    assert done.returncode == 1
    _, iris, churn = audit(box)
    message = "iris version 2 failed its health check; rolled back to the previous version"
    assert iris["decision"] == "failed" and iris["exit_code"] == 1
    assert iris["error"] == message  # from swarmai's error line on
    assert churn["decision"] == "rejected"  # the other rules still run
    assert f"iris: failed: swarmai promote failed: {message}\n" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unreadable_registry_exits_3(box: Path) -> None:
    set_registry(box, {"describe_error": True})
    done = run(box)
    assert done.returncode == 3
    assert promotions(box) == []
    assert [(a["decision"], a["error"]) for a in audit(box)] == [
        ("error", "MLflow is unreachable: Connection refused")] * 2
    assert "iris: error: the registry could not be read: MLflow is unreachable" in done.stderr


def test_dry_run_decides_and_audits_but_never_promotes(box: Path) -> None:
    done = run(box, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert promotions(box) == []
    assert [(a["decision"], a["dry_run"]) for a in audit(box)] == [
        ("would-promote", True), ("rejected", True)]
    assert not (box / "policy.audit.jsonl.lock").exists()  # a dry run takes no lock


@pytest.mark.parametrize(("text", "expected"), [
    (POLICY.replace("metric: accuracy", "metrik: accuracy"),
     "policy.yaml: models[0].metrik: unknown key 'metrik' (did you mean 'metric'?)\n"
     "policy.yaml: models[0].metric: is required but missing (add metric:)\n"),
    (POLICY.replace("model: churn", "model: chrun"),
     "policy.yaml: models[1].model: 'chrun' is not a model of stack 'stack.yaml' "
     "(did you mean 'churn'?)\n"),
])
def test_an_invalid_policy_exits_2_naming_the_yaml_path(box: Path, text: str,
                                                        expected: str) -> None:
    (box / "policy.yaml").write_text(text)
    done = run(box)
    assert (done.returncode, done.stdout) == (2, "")
    assert sorted(done.stderr.splitlines()) == sorted(expected.splitlines())
    assert calls(box) == [] and audit(box) == []


def test_a_missing_swarmai_program_exits_2(box: Path) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "policy.yaml", "--swarmai",
                           str(box / "nope")], cwd=box, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr == f"error: --swarmai: '{box / 'nope'}' is not an executable program\n"


def test_two_overlapping_runs_promote_once(box: Path) -> None:
    release = box / "release"
    set_registry(box, {"promote_waits_for": str(release)})
    runs = [subprocess.Popen(command(box), cwd=box, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        # Whichever run holds the lock waits inside promote until `release` exists,
        # so the other one can only end by being locked out.
        deadline = time.monotonic() + 60
        while all(p.poll() is None for p in runs):
            assert time.monotonic() < deadline, "neither run finished"
            time.sleep(0.05)
        loser = next(p for p in runs if p.poll() is not None)
        winner = next(p for p in runs if p is not loser)
        lost_out, lost_err = loser.communicate()
        release.touch()
        won_out, won_err = winner.communicate(timeout=60)
    finally:
        release.touch()
        for p in runs:
            if p.poll() is None:
                p.kill()
    assert (loser.returncode, winner.returncode) == (0, 0), (lost_err, won_err)
    assert f"another run (pid {winner.pid} on " in lost_out
    assert lost_out.rstrip().endswith("is in progress; nothing done")
    assert len(promotions(box)) == 1
    runs_audited = by_run(audit(box))
    assert len(runs_audited) == 2
    decisions = sorted([line["decision"] for line in lines] for lines in runs_audited.values())
    assert decisions == [["locked", "locked"], ["started", "promoted", "rejected"]]
    locked = next(lines for lines in runs_audited.values() if lines[0]["decision"] == "locked")
    assert [line["model"] for line in locked] == ["iris", "churn"]
    assert "iris: promoted" in won_out


def hold_lock(box: Path, started: str) -> int:
    fd = os.open(box / "policy.audit.jsonl.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    holder = {"pid": 4242, "host": "cron-host", "run_id": "abc", "started": started}
    os.write(fd, json.dumps(holder).encode())
    return fd


def test_a_run_locked_out_exits_0_and_audits_locked(box: Path) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    fd = hold_lock(box, now)
    try:
        done = run(box)
    finally:
        os.close(fd)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == (
        f"another run (pid 4242 on cron-host, run abc, started {now}) is in progress; "
        "nothing done")
    assert calls(box) == []
    assert [(a["model"], a["decision"]) for a in audit(box)] == [
        ("iris", "locked"), ("churn", "locked")]


def test_a_run_locked_out_by_a_stuck_run_exits_4(box: Path) -> None:
    fd = hold_lock(box, "2001-01-01T00:00:00Z")
    try:
        done = run(box, "--stuck-after", "600")
    finally:
        os.close(fd)
    assert done.returncode == 4
    assert "more than --stuck-after 600 s: is it hanging?" in done.stderr
    assert [a["decision"] for a in audit(box)] == ["locked", "locked"]


def test_help_documents_exit_codes_and_cron(box: Path) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0
    for text in ("exit codes:", "  3  the registry could not be read", "--dry-run",
                 "*/10 * * * * cd /opt/swarmai"):
        assert text in done.stdout


@pytest.mark.parametrize("name", ["policy.audit.jsonl", "policy.audit.jsonl.lock"])
def test_a_linked_audit_log_or_lock_is_refused_and_its_target_untouched(
        box: Path, tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    """A link planted where the run writes could make it append to (or truncate,
    for the lock) any file the cron user can write."""
    outside = tmp_path_factory.mktemp("outside") / "precious"
    outside.write_text("keep me\n")
    (box / name).symlink_to(outside)
    done = run(box)
    assert done.returncode == 2, done.stderr
    assert f"{box / name}: the " in done.stderr and "symbolic link" in done.stderr
    assert "Traceback" not in done.stderr
    assert outside.read_text() == "keep me\n"
    assert promotions(box) == []


def test_an_interrupted_promotion_is_settled_first_and_audited(box: Path) -> None:
    """A pending record (a promotion killed midway) makes the run call promote --resume
    for that rule instead of deciding it: 'up to date' would leave it unverified."""
    pending = '{"from": "1", "previous": null, "to": "2"}'
    set_registry(box, {"models": {**REGISTRY["models"], "iris": {
        **REGISTRY["models"]["iris"], "aliases": {"production": "2", "staging": "2"},
        "tags": {"swarmai.pending.production": pending}}}})
    done = run(box)
    assert done.returncode == 0, done.stderr
    assert [c[:3] + c[3:5] for c in promotions(box)] == [
        ["promote", str(box / "stack.yaml"), "iris", "--to", "production"]]
    assert "--resume" in promotions(box)[0]
    started, iris, churn = audit(box)
    assert (started["decision"], iris["decision"], churn["decision"]) == (
        "started", "resumed", "rejected")
    assert iris["reason"] == ("an interrupted promotion was finished; @production serves "
                              "version 2")
    again = run(box)  # settled: the rule is decided as usual
    assert again.returncode == 0 and "iris: up-to-date" in again.stdout


def test_a_promotion_locked_by_another_promote_is_audited_locked(box: Path) -> None:
    set_registry(box, {"promote_busy": True})
    done = run(box)
    assert done.returncode == 0, done.stderr
    started, iris, _ = audit(box)
    assert (started["decision"], iris["decision"], iris["exit_code"]) == (
        "started", "locked", 75)
    assert iris["reason"].startswith("another promotion of stack demo is in progress")
