"""Benchmark: swarmai's model server against `mlflow models serve`, in one run.

The same scikit-learn iris model (the example model: registry/examples), one row
per request, on loopback.  Each server runs in its own process on the host; wrk
(Debian's package: `apt-get install wrk`) puts 64 connections on it for a few
seconds, three rounds, medians.  Rows:

- `mlflow models serve`, the baseline swarmai's FastAPI runtime replaces, as
  `pip install mlflow` gives it (uvicorn on asyncio and h11, one worker);
- swarmai's server with the settings a user gets (batching on), and with
  batching off;
- the model called in this process, one row and 32 rows a call: the limit no
  server reaches (rows per second, no HTTP);
- the HTTP floor: an ASGI app that only reads the body and answers a fixed
  prediction, on the same uvicorn, uvloop and httptools (bench/floor_app.py):
  the most requests/s any server on this stack can answer on this machine.

    .venv/bin/python bench/server.py [--seconds 8] [--rounds 3] [--connections 64]
                                     [--plots bench/results]

``--plots DIR`` also sweeps connections (1 to 64) and the server's batch size,
and writes DIR/server-latency.png and DIR/server-batch.png (bench/plots.py).

Then each server's start until ready, against a bare process that imports
MLflow and loads the model (the floor).

Targets (issue 15): the default server at least 5x the baseline's requests/s
with at most 1/3 of its p99; at least 1.5x with batching off; batched rows/s at
least 25% of the in-process batched rows/s; ready within 2x the floor.
Absolute figures drift with the machine; the ratios, measured in one run, are
what to read.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
ROW = [5.1, 3.5, 1.4, 0.2]
PAYLOAD = {"dataframe_split": {"columns": COLUMNS, "data": [ROW]}}
MODEL_URI = "models:/iris@production"

REGISTER = f"""
import sys
import mlflow
sys.path.insert(0, {str(REPO / "registry" / "examples")!r})
from make_models import iris_model
with mlflow.start_run():
    mlflow.sklearn.log_model(iris_model(), name="model", registered_model_name="iris",
                             serialization_format="cloudpickle")
mlflow.MlflowClient().set_registered_model_alias("iris", "production", "1")
"""


@dataclass(frozen=True)
class Result:
    name: str
    requests_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def register(folder: Path) -> dict[str, str]:
    """A file-store registry in ``folder`` holding the iris model; its environment."""
    # mlflow models serve runs `uvicorn` from PATH: this interpreter's.
    path = f"{Path(PYTHON).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "PATH": path, "MLFLOW_TRACKING_URI": (folder / "mlruns").as_uri(),
           "MLFLOW_ALLOW_FILE_STORE": "true", "PYTHONPATH": str(REPO)}
    subprocess.run([PYTHON, "-c", REGISTER], env=env, cwd=folder, check=True,
                   capture_output=True)
    return env


@contextmanager
def running(command: list[str], env: dict[str, str], ready_url: str,
            log: Path) -> Iterator[None]:
    """Start a server, wait until ``ready_url`` answers 200, stop it afterwards."""
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not _answers(ready_url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{' '.join(command)} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wrk(url: str, connections: int, seconds: float, script: Path) -> Result:
    """One wrk round of POSTs of PAYLOAD to ``url``."""
    done = subprocess.run(
        # wrk refuses fewer connections than threads.
        ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds:g}s",
         "--latency", "-s", str(script), url], capture_output=True, text=True, check=True)
    out = done.stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                              r"timeout (\d+)", out)
    failed = int(errors.group(1)) if errors else 0
    failed += sum(map(int, socket_errors.groups())) if socket_errors else 0
    return Result("", float(_field(r"Requests/sec:\s+([\d.]+)", out)),
                  _ms(_field(r"\s50%\s+(\S+)", out)), _ms(_field(r"\s99%\s+(\S+)", out)), failed)


def _field(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    if found is None:
        raise SystemExit(f"wrk printed no {pattern!r}:\n{text}")
    return found.group(1)


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


# wrk closes its connections when a run ends, but the requests they left queued
# in the server are still answered: the next run's first requests would find
# the queue full and be shed (503) for up to a second.  Each run waits this long.
SETTLE_S = 1.5


def measure(name: str, url: str, args: argparse.Namespace, script: Path) -> Result:
    wrk(url, args.connections, 2, script)  # warm-up: imports, caches, connections
    rounds = []
    for _ in range(args.rounds):
        time.sleep(SETTLE_S)
        rounds.append(wrk(url, args.connections, args.seconds, script))
    return Result(name, statistics.median(r.requests_s for r in rounds),
                  statistics.median(r.p50_ms for r in rounds),
                  statistics.median(r.p99_ms for r in rounds), sum(r.errors for r in rounds))


def in_process(env: dict[str, str], rows: int, seconds: float = 3.0) -> float:
    """Rows/s of the model called in a fresh process, ``rows`` rows a call."""
    code = f"""
import time, mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model({MODEL_URI!r})
frame = pd.DataFrame([{ROW!r}] * {rows}, columns={COLUMNS!r})
model.predict(frame)
calls, start = 0, time.perf_counter()
while time.perf_counter() - start < {seconds}:
    model.predict(frame); calls += 1
print(calls * {rows} / (time.perf_counter() - start))
"""
    done = subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True,
                          check=True)
    return float(done.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    ready_path: str


def servers(env: dict[str, str], folder: Path) -> list[Server]:
    swarmai = [PYTHON, "-m", "swarmai.incontainer.server"]
    server_env = {**env, "MODEL_URI": MODEL_URI, "MODEL_NAME": "iris", "PORT": "18901",
                  "SWARMAI_MODEL_CACHE": str(folder / "cache"), "SWARMAI_LOG_LEVEL": "warning"}
    # mlflow's command line runs `uvicorn ... mlflow.pyfunc.scoring_server.app:app`;
    # uvicorn reads its options from UVICORN_* too.  asyncio and h11 are what
    # plain `pip install mlflow` brings (no uvloop, no httptools).
    baseline_env = {**env, "UVICORN_LOOP": "asyncio", "UVICORN_HTTP": "h11"}
    mlflow = [str(Path(PYTHON).with_name("mlflow")), "models", "serve", "-m", MODEL_URI,
              "--env-manager", "local", "-p", "18900", "-w", "1"]
    floor = [PYTHON, "-m", "uvicorn", "floor_app:app", "--port", "18902", "--loop", "uvloop",
             "--http", "httptools", "--no-access-log", "--log-level", "warning",
             "--app-dir", str(Path(__file__).resolve().parent)]
    return [
        Server("mlflow models serve (baseline)", mlflow, baseline_env, 18900, "/ping"),
        Server("swarmai server, defaults (batching on)", swarmai, server_env, 18901, "/readyz"),
        Server("swarmai server, batching off", swarmai,
               {**server_env, "SWARMAI_MAX_BATCH_SIZE": "1"}, 18901, "/readyz"),
        Server("HTTP floor: empty app, same uvicorn", floor, env, 18902, "/"),
    ]


def ready_seconds(server: Server) -> float:
    """Seconds from the server's start until it answers ``ready_path`` with 200."""
    url = f"http://127.0.0.1:{server.port}{server.ready_path}"
    began = time.monotonic()
    with running(server.command, server.env, url, Path(os.devnull)):
        return time.monotonic() - began


def bare_load_seconds(env: dict[str, str]) -> float:
    """A bare process importing MLflow and loading the model: the floor of a start."""
    code = f"import mlflow.pyfunc; mlflow.pyfunc.load_model({MODEL_URI!r})"
    began = time.monotonic()
    subprocess.run([PYTHON, "-c", code], env=env, check=True, capture_output=True)
    return time.monotonic() - began


def report_startup(floor: float, starts: list[tuple[str, float]]) -> None:
    print(f"\n{'start until ready':42} {'seconds':>8} {'x floor':>8}")
    print(f"{'bare: import mlflow.pyfunc + load_model':42} {floor:8.2f} {1:8.2f}")
    for name, seconds in starts:
        print(f"{name:42} {seconds:8.2f} {seconds / floor:8.2f}")
    print("target (issue 15): the server ready within 2x the floor")


def report(results: list[Result], limit_one: float, limit_batched: float) -> None:
    base = results[0]
    print(f"\n{'server':42} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
          f"{'x req/s':>8} {'x p99':>6}")
    for r in results:
        print(f"{r.name:42} {r.requests_s:8.0f} {r.p50_ms:8.1f} {r.p99_ms:8.1f} {r.errors:6d} "
              f"{r.requests_s / base.requests_s:8.2f} {r.p99_ms / base.p99_ms:6.2f}")
    print(f"{'in process, 1 row a call (rows/s)':42} {limit_one:8.0f}")
    print(f"{'in process, 32 rows a call (rows/s)':42} {limit_batched:8.0f}")
    default, unbatched, floor = results[1], results[2], results[3]
    print("\ntargets (issue 15):")
    print(f"  defaults >= 5x baseline req/s: {default.requests_s / base.requests_s:.2f}x")
    print(f"  defaults p99 <= 1/3 of baseline: {default.p99_ms / base.p99_ms:.2f}")
    print(f"  batching off >= 1.5x baseline req/s: {unbatched.requests_s / base.requests_s:.2f}x")
    print(f"  defaults >= 25% of in-process batched rows/s: "
          f"{default.requests_s / limit_batched:.0%} (the HTTP floor alone reaches "
          f"{floor.requests_s / limit_batched:.0%}; defaults are "
          f"{default.requests_s / floor.requests_s:.0%} of the floor)")


def compare(env: dict[str, str], folder: Path, args: argparse.Namespace,
            script: Path) -> None:
    """The table: each server at ``--connections``, and the in-process limit."""
    results: list[Result] = []
    for server in servers(env, folder):
        with serving(server, folder):
            results.append(measure(server.name, _predict_url(server), args, script))
        print(f"{server.name}: {results[-1]}", file=sys.stderr)
    report(results, in_process(env, 1), in_process(env, 32))


def startup(env: dict[str, str], folder: Path, rounds: int) -> None:
    """Start until ready: the baseline, swarmai's server cold and warm, the floor."""
    baseline, swarmai = servers(env, folder)[:2]
    floor = statistics.median(bare_load_seconds(env) for _ in range(rounds))
    cold = Server(swarmai.name, swarmai.command,
                  {**swarmai.env, "SWARMAI_MODEL_CACHE": str(folder / "cold")},
                  swarmai.port, swarmai.ready_path)
    report_startup(floor, [(baseline.name, ready_seconds(baseline)),
                           ("swarmai server, empty node cache", ready_seconds(cold)),
                           ("swarmai server, model cached on the node", ready_seconds(swarmai))])


SWEEP_CONNECTIONS = (1, 4, 16, 64)
SWEEP_BATCH_SIZES = (1, 4, 16, 32, 64)


def sweeps(env: dict[str, str], folder: Path, args: argparse.Namespace, script: Path,
           out: Path) -> None:
    """The plots: latency and throughput against connections, then against batch size."""
    from plots import latency_vs_concurrency, throughput_vs_batch

    by_connections: list[dict[str, object]] = []
    for server in servers(env, folder):
        with serving(server, folder):
            for connections in SWEEP_CONNECTIONS:
                time.sleep(SETTLE_S)
                one = wrk(_predict_url(server), connections, args.seconds, script)
                by_connections.append({"server": server.name, "connections": connections,
                                       **_row(one)})
    by_batch: list[dict[str, object]] = []
    swarmai = servers(env, folder)[1]
    for size in SWEEP_BATCH_SIZES:
        sized = Server(swarmai.name, swarmai.command,
                       {**swarmai.env, "SWARMAI_MAX_BATCH_SIZE": str(size)},
                       swarmai.port, swarmai.ready_path)
        with serving(sized, folder):
            one = wrk(_predict_url(sized), 64, args.seconds, script)
            by_batch.append({"max_batch_size": size, **_row(one)})
    for path in (latency_vs_concurrency(by_connections, out / "server-latency.png"),
                 throughput_vs_batch(by_batch, out / "server-batch.png")):
        print(f"wrote {path}")


def _row(result: Result) -> dict[str, object]:
    return {"requests_s": result.requests_s, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms}


@contextmanager
def serving(server: Server, folder: Path) -> Iterator[None]:
    url = f"http://127.0.0.1:{server.port}{server.ready_path}"
    with running(server.command, server.env, url, folder / "server.log"):
        yield


def _predict_url(server: Server) -> str:
    return f"http://127.0.0.1:{server.port}/invocations"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server (median)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--plots", type=Path, metavar="DIR", default=None,
                        help="also sweep connections and batch sizes, and write PNGs here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="swarmai-bench-") as tmp:
        folder = Path(tmp)
        env = register(folder)
        script = folder / "post.lua"
        script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = '
                          f'"application/json"\nwrk.body = {json.dumps(json.dumps(PAYLOAD))}\n')
        compare(env, folder, args, script)
        startup(env, folder, args.rounds)
        if args.plots is not None:
            sweeps(env, folder, args, script, args.plots)


if __name__ == "__main__":
    main()
