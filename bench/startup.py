"""Benchmark: how long the CLI takes to answer, against its bare dependencies.

Runs each command in a fresh interpreter (as a user's shell does) and prints the
median wall time, and its ratio against the baseline measured in the same run:
a bare ``python -c "import click, yaml, pydantic"``, the floor any CLI built on
them pays.  Goal: ``swarmai validate stacks/vision.yaml`` within 1.5x of it.

    .venv/bin/python bench/startup.py [--repeat 7]

``python -X importtime -c "from swarmai.cli import main"`` shows where the rest goes.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI = "from swarmai.cli import main; main()"
CASES: tuple[tuple[str, list[str]], ...] = (
    ("baseline: import click, yaml, pydantic", ["-c", "import click, yaml, pydantic"]),
    ("swarmai --version", ["-c", CLI, "--version"]),
    ("swarmai validate stacks/vision.yaml", ["-c", CLI, "validate", "stacks/vision.yaml"]),
    ("swarmai render vision --dry-run", ["-c", CLI, "render", "stacks/vision.yaml",
                                         "-t", "swarm", "-o", "/nonexistent/out", "--dry-run"]),
    ("swarmai --help", ["-c", CLI, "--help"]),
)


def median_seconds(args: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    repeat = parser.parse_args().repeat
    baseline = median_seconds(CASES[0][1], repeat)
    print(f"{'command':42} {'median s':>9} {'vs baseline':>12}")
    for label, args in CASES:
        seconds = baseline if args is CASES[0][1] else median_seconds(args, repeat)
        print(f"{label:42} {seconds:9.3f} {seconds / baseline:11.2f}x")


if __name__ == "__main__":
    main()
