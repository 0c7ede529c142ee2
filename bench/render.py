"""Benchmark: validate + render generated stacks of 10, 100 and 1,000 models.

Prints wall time per size and target, the time per model, and the per-model
ratio against the 10-model run measured in the same process (1.0 = linear).
Goal: 1,000 models well under a second, and ratios near 1.

    .venv/bin/python bench/render.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from swarmai.render import render_bundle
from swarmai.spec import Target, load_stack

SIZES = (10, 100, 1000)
RUNTIMES = ("fastapi", "tfserving", "torchserve")


def generated_stack(models: int) -> dict[str, object]:
    """A stack with a mix of runtimes; every fourth model pins its own GPU."""
    gpu_models = range(0, models, 4)
    nodes = {f"gpu-{i // 8}": {"gpus": []} for i in gpu_models}
    entries = []
    for index in range(models):
        model: dict[str, object] = {
            "name": f"m{index}",
            "runtime": RUNTIMES[index % 3],
            "model": f"models:/m{index}@production",
            "batching": {"max_batch_size": 8, "max_delay_ms": 5},
        }
        if index % 4 == 0:
            node = f"gpu-{index // 8}"
            # Ids unique across nodes, so the same file is valid for Compose too.
            device = str(index // 4)
            nodes[node]["gpus"].append(device)
            model["gpus"] = {"node": node, "devices": [device]}
        else:
            model["replicas"] = 2
        entries.append(model)
    return {"version": 1, "name": "bench", "nodes": nodes, "models": entries}


def time_once(path: Path, target: Target) -> float:
    start = time.perf_counter()
    render_bundle(load_stack(path, target), target, ipvs=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per size (median kept)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        paths = {}
        for size in SIZES:
            paths[size] = Path(scratch) / f"stack-{size}.yaml"
            paths[size].write_text(yaml.safe_dump(generated_stack(size)))
        targets: tuple[Target, ...] = ("swarm", "compose")
        print(f"{'target':8} {'models':>7} {'median s':>10} {'ms/model':>9} {'ratio':>6}")
        for target in targets:
            time_once(paths[SIZES[0]], target)  # warm imports and caches
            baseline = None
            for size in SIZES:
                runs = [time_once(paths[size], target) for _ in range(args.repeat)]
                per_model = statistics.median(runs) / size
                baseline = baseline or per_model
                print(f"{target:8} {size:7d} {statistics.median(runs):10.3f} "
                      f"{per_model * 1000:9.3f} {per_model / baseline:6.2f}")


if __name__ == "__main__":
    main()
