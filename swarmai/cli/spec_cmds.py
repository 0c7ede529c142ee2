"""Commands on the stack file alone: validate, render, nodes config."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from swarmai.cli.common import (
    TARGETS,
    output_option,
    run_action,
    stack_file_argument,
    target_option,
)
from swarmai.errors import SpecError
from swarmai.lifecycle.ipvs import resolve_ipvs
from swarmai.render import render_bundle
from swarmai.render.naming import state_location
from swarmai.render.nodes import NVIDIA_CONFIG_PATH, node_configs
from swarmai.spec import Stack, Target, default_target, load_stack
from swarmai.writer import WriteReport, write_bundle


@click.command()
@stack_file_argument()
@target_option("Check the GPU rules of this target [default: swarm if the stack "
                "declares nodes:, else compose].")
@output_option()
def validate(stack_file: Path, target: Target | None, output_format: str) -> None:
    """Check FILE and report every problem at once.

    Each problem is one line, FILE: YAML.PATH: message (hint). Exits 0 when the
    stack is valid, 2 when it is not. A stack valid for Swarm also gets where
    its registry's data (MLflow, its database, the S3 store) will live.

    \b
    Examples:
      swarmai validate stacks/vision.yaml
      swarmai validate stacks/dev.yaml --target compose
      swarmai validate stack.yaml --output json | jq '.problems[].path'
    """
    try:
        stack = load_stack(stack_file, target)
    except SpecError as error:
        if output_format == "json":
            report = {"valid": False, "problems": [p.as_dict() for p in error.problems]}
            click.echo(json.dumps(report, indent=2))
        else:
            click.echo(str(error), err=True)
        sys.exit(error.exit_code)
    uses_gpus = any(m.gpus for m in stack.models)
    # Only GPU rules differ between targets: a CPU-only stack is valid for both.
    chosen = target or (default_target(stack) if uses_gpus else "compose and swarm")
    # Where the registry keeps its data matters on Swarm only (one host on Compose).
    data = state_location(stack) if chosen != "compose" else None
    if output_format == "json":
        click.echo(json.dumps({"valid": True, "target": chosen, "problems": [],
                               "registry_data": data}, indent=2))
    else:
        click.echo(f"{stack_file}: valid for {chosen} ({_summary(stack)})")
        if data is not None:
            click.echo(f"registry data on Swarm: {data}")


def _summary(stack: Stack) -> str:
    gpus = sum(len(m.gpus.devices) for m in stack.models if m.gpus)
    return f"{_plural(len(stack.models), 'model')}, {_plural(gpus, 'pinned GPU')}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@click.command()
@stack_file_argument()
@click.option("--target", "-t", type=TARGETS, required=True,
              help="compose: one host (swarmai up); swarm: a Swarm (swarmai deploy).")
@click.option("--output-dir", "-o", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Directory to write into; created if missing.")
@click.option("--ipvs/--no-ipvs", default=None,
              help="Override network.ipvs. Without IPVS every Swarm service uses dnsrr "
                   "and host-mode ports. [default: network.ipvs; auto probes this machine]")
@click.option("--dry-run", "-n", is_flag=True, help="Report what would change; write nothing.")
def render(stack_file: Path, target: Target, output_dir: Path, ipvs: bool | None,
           dry_run: bool) -> None:
    """Write every file a deploy of FILE needs into a directory.

    \b
    The directory gets:
      compose.yml or stack.yml    the Compose / Swarm file (validate it with
                                  docker compose config / docker stack config)
      gateway/                    Traefik static and dynamic (file provider) config
      registry/                   MLflow and S3-store entrypoints (secrets as files)
      runtimes/<model>/           TF Serving and TorchServe configs
    Only changed files are rewritten; files a previous render wrote that are no
    longer needed are removed; other files are left alone.

    \b
    Examples:
      swarmai render stacks/vision.yaml --target swarm -o out/vision
      swarmai render stacks/dev.yaml --target compose -o out/dev --dry-run
      cd out/vision && docker stack config -c stack.yml >/dev/null
    """
    def action() -> WriteReport:
        stack = load_stack(stack_file, target)
        bundle = render_bundle(stack, target, ipvs=resolve_ipvs(stack, ipvs))
        return write_bundle(bundle, output_dir, dry_run=dry_run)

    report = run_action(action)
    verb = "would write" if dry_run else "wrote"
    for label, names in (("new", report.created), ("changed", report.changed),
                         ("removed", report.removed)):
        for name in names:
            click.echo(f"  {label:8} {name}")
    click.echo(f"{verb} {output_dir}: {len(report.created)} new, {len(report.changed)} changed, "
               f"{len(report.unchanged)} unchanged, {len(report.removed)} removed")


@click.group()
def nodes() -> None:
    """GPU node settings for Swarm."""


@nodes.command("config")
@stack_file_argument()
@output_option()
def nodes_config(stack_file: Path, output_format: str) -> None:
    """Print each GPU node's daemon.json fragment and NVIDIA runtime setting.

    Every device in nodes: becomes one discrete generic resource, so Swarm
    itself refuses to give one GPU to two services. The NVIDIA runtime's
    swarm-resource must then be empty: swarmai passes devices through
    NVIDIA_VISIBLE_DEVICES, set on every service to exactly the reserved ids
    (or to void), so a mismatched setting cannot expose every GPU of a node.
    Restart dockerd on the node after merging the fragment.

    \b
    Examples:
      swarmai nodes config stacks/vision.yaml
      swarmai nodes config stacks/vision.yaml -o json | jq '."gpu-a".daemon_json'
    """
    stack = run_action(lambda: load_stack(stack_file, "swarm"))
    configs = node_configs(stack)
    if output_format == "json":
        click.echo(json.dumps({c.hostname: {"daemon_json": c.daemon_json,
                                            "nvidia_config_toml": c.nvidia_toml}
                               for c in configs}, indent=2))
        return
    if not configs:
        click.echo(f"{stack_file}: declares no nodes: (no GPU settings needed)")
    for config in configs:
        click.echo(f"# node {config.hostname}: merge into /etc/docker/daemon.json")
        click.echo(json.dumps(config.daemon_json, indent=2))
        click.echo(f"# node {config.hostname}: {NVIDIA_CONFIG_PATH}")
        click.echo(config.nvidia_toml)
