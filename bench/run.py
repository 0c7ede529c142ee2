"""Every benchmark in one command, each beside its own baseline, plots included.

Runs, in this order, each in its own process (each prints its table of ratios
against the baseline it measured in the same run):

  render     validate + render 10, 100, 1,000 models     (linear: ratio near 1)
  startup    CLI commands against `import click, yaml, pydantic`
  server     swarmai's server against `mlflow models serve`, the in-process
             model and the HTTP floor; ready time against a bare load
  rollout    `swarmai promote` against naive rollouts, Swarm and Compose
  lifecycle  deploy, up, rm, down against the engine's own commands;
             Traefik routed against straight to the server
  auth       Traefik with swarmai's generated login, and with bcrypt, against
             the same route without a login
  images     every offline image's size and its largest layers

`server`, `rollout`, `lifecycle`, `auth` and `images` need the engine, the offline
images and wrk (what scripts/test.sh installs); the plots need matplotlib
(`.venv/bin/pip install --require-hashes -r bench/requirements.lock`).

    .venv/bin/python bench/run.py [--plots docs/bench] [--only server lifecycle]

Exits 1 if any benchmark failed (its output says why); the others still run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES: dict[str, list[str]] = {
    "render": ["render.py"],
    "startup": ["startup.py"],
    "server": ["server.py"],
    "rollout": ["rollout.py", "--compose"],
    "lifecycle": ["lifecycle.py"],
    "auth": ["gateway_auth.py"],
    "images": ["images.py"],
}
PLOTTING = {"server", "lifecycle"}  # the ones that take --plots DIR


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plots", type=Path, metavar="DIR",
                        help="write the PNG plots here (server and lifecycle)")
    parser.add_argument("--only", nargs="+", choices=list(BENCHES), metavar="NAME",
                        help=f"run only these, of: {', '.join(BENCHES)}")
    args = parser.parse_args()
    failed = []
    for name in args.only or list(BENCHES):
        script, *flags = BENCHES[name]
        if args.plots and name in PLOTTING:
            flags += ["--plots", str(args.plots)]
        print(f"\n== {name}: bench/{script} {' '.join(flags)}", flush=True)
        started = time.monotonic()
        done = subprocess.run([sys.executable, str(HERE / script), *flags], check=False)
        print(f"== {name}: {'ok' if done.returncode == 0 else 'FAILED'} in "
              f"{time.monotonic() - started:.0f} s", flush=True)
        if done.returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
