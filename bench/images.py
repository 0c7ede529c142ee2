"""Every image a stack runs offline: its size and its largest layers.

Reads the images `swarmai images build --offline` made (the tags the catalog
computes, so exactly what `deploy --offline` runs): each image's size, and its
three largest layers with the Dockerfile step that made them, so a layer that
carries what the image's process never imports shows up.  No baseline: image
sizes are compared with the previous run's printout.

    .venv/bin/python bench/images.py [--layers 3]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess

from swarmai.images.catalog import image_tags


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True,
                          timeout=120).stdout


# What every step of a Dockerfile's history repeats, and says nothing about the layer.
NOISE = (re.compile(r"^RUN (\|\d+ \S+ )?/bin/sh -c "), re.compile(r" # buildkit$"),
         re.compile(r"if \[ -s /run/secrets/ca \]; then export PIP_CERT=\S+; fi; "))


def layers(tag: str) -> list[tuple[int, str]]:
    """(bytes, the step that made it) per layer, largest first."""
    lines = docker("history", "--no-trunc", "--human=false", "--format",
                   "{{.Size}}\t{{.CreatedBy}}", tag).splitlines()
    found = [(int(size), _step(step)) for size, _, step in
             (line.partition("\t") for line in lines)]
    return sorted(found, key=lambda layer: -layer[0])


def _step(created_by: str) -> str:
    step = " ".join(created_by.split())
    for pattern in NOISE:
        step = pattern.sub("", step)
    return step or "the base image's root file system (debootstrap, imported)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=3, help="largest layers shown per image")
    count = parser.parse_args().layers
    print(f"{'image key':18} {'tag':44} {'MB':>7}")
    for key, tag in sorted(image_tags(offline=True).items()):
        try:
            size = json.loads(docker("image", "inspect", tag))[0]["Size"]
        except subprocess.CalledProcessError:
            print(f"{key:18} {tag:44} {'absent (swarmai images build --offline)':>7}")
            continue
        print(f"{key:18} {tag:44} {size / 1e6:7.0f}")
        for layer_bytes, step in layers(tag)[:count]:
            print(f"{'':18}   {layer_bytes / 1e6:7.0f} MB  {step[:90]}")


if __name__ == "__main__":
    main()
