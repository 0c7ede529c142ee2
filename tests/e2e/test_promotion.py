"""Promotion on the real engine: zero failed requests, automatic rollback, canary weights.

A two-replica FastAPI model behind the real Traefik, under a steady load of
4 clients for every rollout (bench/loadgen.py):

v1 serves -> promote --from staging (v2): 0 failed requests, and every
response after the command returned comes from v2 -> promote v3, which
never becomes healthy (its load needs more memory than the service may use,
which the pre-flight cannot see): exit 1, Swarm rolled back, the alias is
back at v2, 0 failed requests -> canary of v4 at 25%: over 400 requests its
share is 25% +- 7% -> --finish: everything from v4 -> rollback: v2 again ->
a promotion killed (SIGKILL) right after its alias move is finished by the
next cron run, one killed mid-roll by the next promote, one killed after its
alias move undone by the next deploy, 0 failed requests throughout -> promote
without --offline keeps the offline images and every other service's tasks ->
after an unrelated edit it refuses, naming it (exit 2) -> a cron run killed
(kill -9) mid-promotion: the next run audits `locked`, the orphaned promote
finishes, 0 failed requests -> rm --volumes leaves the engine as found.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lifecycle import engine_snapshot, swarmai, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from loadgen import Load, send, summarize

pytestmark = pytest.mark.e2e

NAME = "e2epromote"
PORT = 18680
URL = f"http://127.0.0.1:{PORT}/scorer/v1/predict"
PAYLOAD = {"dataframe_records": [{"x": 1.0}, {"x": 2.0}]}
# The service's memory limit, and what version 3 allocates when it loads.
MEMORY_LIMIT = "700M"
HOG_BYTES = 1_500_000_000

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
    replicas: 2
    resources: {{memory: {MEMORY_LIMIT}}}
"""

MAKE_MODELS = """
import sys
import cloudpickle

out = sys.argv[1]

def constant(value):
    def predict(frame):
        return [value] * len(frame)
    return predict

def memory_limit():
    # The container's cgroup memory limit; None where there is none.  Looked for
    # both where a private cgroup namespace shows it (cgroup v2, then v1) and at
    # this process's own cgroup path (an engine that shares the host's cgroup
    # namespace shows the host's root at /sys/fs/cgroup): the smallest one found.
    paths = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
    try:
        with open("/proc/self/cgroup") as handle:
            for line in handle:
                _, controllers, path = line.strip().split(":", 2)
                if controllers == "":
                    paths.append(f"/sys/fs/cgroup{path}/memory.max")
                elif "memory" in controllers.split(","):
                    paths.append(f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes")
    except (OSError, ValueError):
        pass
    limits = []
    for path in paths:
        try:
            with open(path) as handle:
                text = handle.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            limits.append(int(text))
    return min(limits) if limits else None

class Hog:
    # Loads fine where memory is plentiful (the pre-flight); the served
    # container, limited to MEMORY_LIMIT, is killed while loading it. The
    # kill is the OOM killer's, done here: where the host has swap, the
    # kernel lets the allocation thrash for minutes before killing it.
    def __init__(self, size):
        self.size = size
    def __call__(self, frame):
        return [3.0] * len(frame)
    def __getstate__(self):
        return {"size": self.size}
    def __setstate__(self, state):
        import os, signal
        self.size = state["size"]
        limit = memory_limit()
        if limit is not None and limit < self.size:
            os.kill(os.getpid(), signal.SIGKILL)
        self.ballast = bytearray(b"x") * self.size

for name, model in (("v1", constant(1.0)), ("v2", constant(2.0)), ("v3", Hog(int(sys.argv[2]))),
                    ("v4", constant(4.0))):
    with open(f"{out}/{name}.pkl", "wb") as handle:
        cloudpickle.dump(model, handle)
"""


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory,
             offline_images: dict[str, str]) -> Iterator[dict[str, Any]]:
    """The stack deployed with v1 @production, v2 @staging, v3 and v4 registered."""
    root = tmp_path_factory.mktemp("promotion")
    stack = root / f"{NAME}.yaml"
    stack.write_text(STACK)
    state = ["--state-dir", str(root / "state")]
    swarmai("rm", str(stack), "--volumes")  # a previous run's leftovers, if any
    before = engine_snapshot()
    subprocess.run([sys.executable, "-c", MAKE_MODELS, str(root), str(HOG_BYTES)], check=True)
    first = swarmai("deploy", str(stack), "--offline", *state)
    assert first.returncode == 1, first.stderr  # the registry is empty: push, then deploy
    for name, alias, accuracy in (("v1", "production", 0.80), ("v2", "staging", 0.90),
                                  ("v3", "candidate", 0.95), ("v4", "challenger", 0.97)):
        pushed = swarmai("models", "push", str(stack), "scorer", str(root / f"{name}.pkl"),
                         "--alias", alias, "--metric", f"accuracy={accuracy}", "--offline")
        assert pushed.returncode == 0, pushed.stderr
    deployed = swarmai("deploy", str(stack), "--offline", *state)
    assert deployed.returncode == 0, deployed.stderr
    try:
        yield {"stack": stack, "state": state, "root": root}
    finally:
        removed = swarmai("rm", str(stack), "--volumes")
        assert removed.returncode == 0, removed.stderr
        assert engine_snapshot() == before


def _promote(deployed: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    return swarmai("promote", str(deployed["stack"]), "scorer", "--offline", *deployed["state"],
                   "--output", "json", *args)


def _aliases(deployed: dict[str, Any]) -> dict[str, str]:
    described = swarmai("models", "describe", str(deployed["stack"]), "scorer", "--offline",
                        "--output", "json")
    assert described.returncode == 0, described.stderr
    aliases: dict[str, str] = json.loads(described.stdout)["aliases"]
    return aliases


def _versions_of(requests: int) -> dict[str | None, int]:
    body = json.dumps(PAYLOAD).encode()
    outcomes = [send(URL, body, 30) for _ in range(requests)]
    summary = summarize(outcomes)
    assert summary["failed"] == 0, summary
    versions: dict[str | None, int] = summary["versions"]
    return versions


def test_promotion_under_load_fails_no_request(deployed: dict[str, Any]) -> None:
    assert _versions_of(20) == {"1": 20}
    with Load(URL, PAYLOAD, clients=4) as load:
        time.sleep(2)
        promoted = _promote(deployed, "--to", "production", "--from", "staging")
        done = time.monotonic()
        time.sleep(2)
    assert promoted.returncode == 0, promoted.stderr
    report = json.loads(promoted.stdout)
    assert (report["action"], report["version"], report["previous"]) == ("promoted", "2", "1")
    overall = load.summary()
    assert overall["failed"] == 0, overall
    assert overall["requests"] > 100, overall
    assert load.summary(since=done)["versions"] == {"2": load.summary(since=done)["requests"]}
    assert _aliases(deployed)["production"] == "2"

    # Re-running the same promotion changes nothing and restarts nothing.
    again = _promote(deployed, "--to", "production", "--from", "staging")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["action"] == "unchanged"


def test_a_version_that_never_gets_healthy_is_rolled_back(deployed: dict[str, Any]) -> None:
    with Load(URL, PAYLOAD, clients=4) as load:
        failed = _promote(deployed, "--to", "production", "--version", "3")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Traceback" not in failed.stderr, failed.stderr
    assert "@production is back at version 2" in failed.stderr, failed.stderr
    assert _aliases(deployed)["production"] == "2"
    summary = load.summary()
    assert summary["failed"] == 0, summary
    assert set(summary["versions"]) == {"2"}, summary
    assert _versions_of(20) == {"2": 20}


def test_canary_takes_its_share_then_finish_serves_only_it(deployed: dict[str, Any]) -> None:
    started = _promote(deployed, "--to", "production", "--version", "4", "--canary", "25")
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["action"] == "canary"
    assert _aliases(deployed)["production"] == "2"  # the alias moves only at --finish
    versions = _versions_of(400)
    share = versions.get("4", 0) / 400
    assert 0.18 <= share <= 0.32, versions
    assert set(versions) == {"2", "4"}, versions

    with Load(URL, PAYLOAD, clients=4) as load:
        finished = _promote(deployed, "--to", "production", "--finish")
        done = time.monotonic()
        time.sleep(2)
    assert finished.returncode == 0, finished.stderr
    assert load.summary()["failed"] == 0, load.summary()
    assert set(load.summary(since=done)["versions"]) == {"4"}
    assert _aliases(deployed)["production"] == "4"

    rolled = swarmai("rollback", str(deployed["stack"]), "scorer", "--offline",
                     *deployed["state"], "--output", "json")
    assert rolled.returncode == 0, rolled.stderr
    assert json.loads(rolled.stdout)["version"] == "2"
    assert _versions_of(20) == {"2": 20}


def test_two_overlapping_cron_runs_promote_once(deployed: dict[str, Any]) -> None:
    # After the rollback above, production is v2 (accuracy 0.90); v4 (0.97) is
    # @challenger.  Two runs of the cron script start at the same moment.
    root: Path = deployed["root"]
    policy = root / "policy.yaml"
    audit = root / "promotions.jsonl"
    policy.write_text(f"""\
version: 1
stack: {deployed['stack']}
target: swarm
offline: true
state_dir: {deployed['state'][1]}
audit_log: {audit}
models:
  - model: scorer
    from: challenger
    to: production
    metric: accuracy
    compare: higher
    min: 0.9
""")
    script = Path(__file__).resolve().parents[2] / "scripts" / "promote_models.py"
    runs = [subprocess.Popen([sys.executable, str(script), str(policy)], text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(2)]
    outputs = [run.communicate(timeout=900) for run in runs]
    codes = [run.returncode for run in runs]
    assert codes == [0, 0], outputs
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert sorted(line["decision"] for line in lines) == ["locked", "promoted", "started"], lines
    assert len({line["run_id"] for line in lines}) == 2  # one line per model per run
    assert _aliases(deployed)["production"] == "4"
    assert _versions_of(20) == {"4": 20}

    # A third run finds nothing to do.
    third = subprocess.run([sys.executable, str(script), str(policy)], text=True,
                           capture_output=True, timeout=600, check=False)
    assert third.returncode == 0, third.stderr
    assert json.loads(audit.read_text().splitlines()[-1])["decision"] == "up-to-date"


def _killed_promotion(deployed: dict[str, Any], version: str, after: str,
                      delay_s: float) -> str:
    """``promote --version VERSION`` killed (SIGKILL, its whole process group: a crash)
    ``delay_s`` after it prints a line containing ``after``; what it had printed."""
    process = subprocess.Popen(
        [sys.executable, "-c", "from swarmai.cli import main; main()", "promote",
         str(deployed["stack"]), "scorer", "--offline", *deployed["state"], "--to",
         "production", "--version", version], text=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, start_new_session=True)
    assert process.stderr is not None
    seen = []
    try:
        for line in process.stderr:
            seen.append(line)
            if after in line:
                time.sleep(delay_s)
                break
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)
    printed = "".join(seen)
    assert after in printed, printed
    return printed


def _pending(deployed: dict[str, Any]) -> str | None:
    described = swarmai("models", "describe", str(deployed["stack"]), "scorer", "--offline",
                        "--output", "json")
    assert described.returncode == 0, described.stderr
    tags: dict[str, str] = json.loads(described.stdout)["tags"]
    return tags.get("swarmai.pending.production")


def test_a_promotion_killed_after_its_alias_moved_is_finished_by_the_next_cron_run(
        deployed: dict[str, Any]) -> None:
    # production is v4 (the cron test above). A promotion of v2 dies right after
    # moving the alias: the servers still run v4, unverified v2 is what the alias says.
    with Load(URL, PAYLOAD, clients=4) as load:
        _killed_promotion(deployed, "2", after="scorer@production: version 4 -> 2", delay_s=0)
        assert json.loads(_pending(deployed) or "{}") == {"from": "4", "to": "2",
                                                          "previous": "2"}
        script = Path(__file__).resolve().parents[2] / "scripts" / "promote_models.py"
        cron = subprocess.run([sys.executable, str(script), str(deployed["root"] / "policy.yaml")],
                              text=True, capture_output=True, timeout=900, check=False)
        done = time.monotonic()
        time.sleep(2)
    assert cron.returncode == 0, cron.stdout + cron.stderr
    audit = [json.loads(line) for line in
             (deployed["root"] / "promotions.jsonl").read_text().splitlines()]
    assert [line["decision"] for line in audit[-2:]] == ["started", "resumed"], audit[-2:]
    assert audit[-1]["reason"] == ("an interrupted promotion was finished; @production serves "
                                   "version 2")
    summary = load.summary()
    assert summary["failed"] == 0, summary
    assert load.summary(since=done)["versions"] == {"2": load.summary(since=done)["requests"]}
    assert _pending(deployed) is None


def test_a_promotion_killed_mid_roll_is_finished_by_the_next_promote(
        deployed: dict[str, Any]) -> None:
    # production is v2; a promotion of v4 dies while Swarm rolls the servers.
    with Load(URL, PAYLOAD, clients=4) as load:
        printed = _killed_promotion(deployed, "4", after="deploying stack", delay_s=3)
        assert "scorer@production: version 2 -> 4" in printed
        assert _aliases(deployed)["production"] == "4" and _pending(deployed) is not None
        resumed = _promote(deployed, "--to", "production", "--version", "4")
        done = time.monotonic()
        time.sleep(2)
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert (report["resumed"], report["action"], report["version"]) == (
        "finished", "unchanged", "4"), report
    assert "an interrupted promotion of scorer@production (version 2 -> 4)" in resumed.stderr
    summary = load.summary()
    assert summary["failed"] == 0, summary
    assert load.summary(since=done)["versions"] == {"4": load.summary(since=done)["requests"]}
    assert _pending(deployed) is None


def test_a_promotion_killed_after_its_alias_moved_is_undone_by_the_next_deploy(
        deployed: dict[str, Any]) -> None:
    # production is v4; a promotion of v2 dies right after moving the alias. A deploy
    # cannot verify v2, so it puts v4 back instead of rolling the servers to v2.
    with Load(URL, PAYLOAD, clients=4) as load:
        _killed_promotion(deployed, "2", after="scorer@production: version 4 -> 2", delay_s=0)
        assert _aliases(deployed)["production"] == "2" and _pending(deployed) is not None
        redeployed = swarmai("deploy", str(deployed["stack"]), "--offline", *deployed["state"])
        done = time.monotonic()
        time.sleep(2)
    assert redeployed.returncode == 0, redeployed.stderr
    assert ("an interrupted promotion of scorer@production (version 4 -> 2) was undone: "
            "@production is back at version 4") in redeployed.stdout + redeployed.stderr
    assert _aliases(deployed)["production"] == "4" and _pending(deployed) is None
    summary = load.summary()
    assert summary["failed"] == 0, summary
    assert load.summary(since=done)["versions"] == {"4": load.summary(since=done)["requests"]}


def _tasks(*services: str) -> dict[str, list[tuple[str, str]]]:
    """Each service's running tasks: (task ID, image)."""
    found = {}
    for service in services:
        listed = subprocess.run(
            ["docker", "service", "ps", f"{NAME}_{service}", "--filter", "desired-state=running",
             "--format", "{{.ID}} {{.Image}}"], capture_output=True, text=True, check=True)
        found[service] = sorted(tuple(line.split(" ", 1)) for line in listed.stdout.splitlines())
    return found


def test_a_promotion_without_offline_keeps_the_deployed_images_and_touches_only_its_model(
        deployed: dict[str, Any]) -> None:
    # Deployed with --offline; the flag forgotten, as cron or a person would.
    before = _tasks("mlflow", "s3", "gateway")
    promoted = swarmai("promote", str(deployed["stack"]), "scorer", *deployed["state"],
                       "--output", "json", "--to", "production", "--version", "2")
    assert promoted.returncode == 0, promoted.stderr
    assert "runs the offline images: using them" in promoted.stderr
    assert _tasks("mlflow", "s3", "gateway") == before
    assert _versions_of(20) == {"2": 20}


def test_a_promotion_after_an_unrelated_edit_refuses_and_names_it(
        deployed: dict[str, Any]) -> None:
    stack: Path = deployed["stack"]
    text = stack.read_text()
    stack.write_text(text.replace(f"port: {PORT}", f"port: {PORT + 1}"))
    try:
        refused = _promote(deployed, "--to", "production", "--version", "4")
    finally:
        stack.write_text(text)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "the stack differs from what runs beyond model scorer" in refused.stderr
    assert "~ service gateway" in refused.stderr and str(PORT + 1) in refused.stderr
    assert "Traceback" not in refused.stderr
    assert _aliases(deployed)["production"] == "2"


def _lock_holder(deployed: dict[str, Any]) -> int | None:
    """The pid the stack's promote.lock names (its holder writes itself there)."""
    try:
        text = (Path(deployed["state"][1]) / "promote.lock").read_text()
        return int(json.loads(text)["pid"])
    except (OSError, ValueError, KeyError):
        return None


def _children(pid: int) -> set[int]:
    return {int(child) for child in
            Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def test_a_cron_run_killed_mid_promotion_leaves_one_promotion_that_finishes(
        deployed: dict[str, Any]) -> None:
    # production is v2, @challenger v4 is better: a cron run starts promoting it and is
    # killed (kill -9 of the script alone, as an OOM kill): its `swarmai promote` goes
    # on without a reader, holding the stack's lock; the next run waits for nothing.
    root: Path = deployed["root"]
    script = Path(__file__).resolve().parents[2] / "scripts" / "promote_models.py"
    with Load(URL, PAYLOAD, clients=4) as load:
        run = subprocess.Popen([sys.executable, str(script), str(root / "policy.yaml")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        orphan = wait_until(lambda: _lock_holder(deployed) in _children(run.pid) and
                            _lock_holder(deployed), 120, "the cron run's promote holds the lock")
        run.kill()
        run.communicate(timeout=30)
        second = subprocess.run([sys.executable, str(script), str(root / "policy.yaml")],
                                text=True, capture_output=True, timeout=600, check=False)
        assert second.returncode == 0, second.stdout + second.stderr
        last = json.loads((root / "promotions.jsonl").read_text().splitlines()[-1])
        assert last["decision"] == "locked", last
        assert Path(f"/proc/{orphan}").exists()  # the killed run's promotion still runs
        wait_until(lambda: not Path(f"/proc/{orphan}").exists(), 600, "the orphan ends")
        done = time.monotonic()
        time.sleep(2)
    assert _aliases(deployed)["production"] == "4" and _pending(deployed) is None
    summary = load.summary()
    assert summary["failed"] == 0, summary
    assert load.summary(since=done)["versions"] == {"4": load.summary(since=done)["requests"]}
    third = subprocess.run([sys.executable, str(script), str(root / "policy.yaml")],
                           text=True, capture_output=True, timeout=600, check=False)
    assert third.returncode == 0, third.stdout + third.stderr
    last = json.loads((root / "promotions.jsonl").read_text().splitlines()[-1])
    assert last["decision"] == "up-to-date", last
