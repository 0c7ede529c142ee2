"""Commands for what a stack serves: models in its registry, and the images it runs."""

from __future__ import annotations

import json
from pathlib import Path

import click

from swarmai.cli.common import (
    TARGETS,
    offline_option,
    output_option,
    progress,
    run_action,
    stack_file_argument,
)
from swarmai.engine import Engine
from swarmai.errors import UsageError
from swarmai.images import BuildResult, build_images
from swarmai.images.publish import PublishedImage, publish
from swarmai.lifecycle.steps import registry_target, stack_images
from swarmai.registry_client import ModelDescription, ModelVersion, RegistryClient
from swarmai.spec import Target, load_stack


@click.group()
def models() -> None:
    """Models in a stack's MLflow registry (reached from inside the stack's network)."""


def _registry(stack_file: Path, target: Target, offline: bool) -> RegistryClient:
    engine = Engine.from_env()
    return RegistryClient(engine, registry_target(load_stack(stack_file, target), offline=offline))


@models.command("push")
@stack_file_argument()
@click.argument("name")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--alias", help="Point this alias (e.g. production) at the pushed version.")
@click.option("--target", "-t", type=TARGETS, default="swarm", show_default=True,
              help="Where the stack runs: swarm (deploy) or compose (up).")
@click.option("--metric", "metrics", multiple=True, metavar="KEY=VALUE",
              help="An evaluation result to log on the new version's run (repeatable); "
                   "promotion policies compare these.")
@offline_option()
def push(stack_file: Path, name: str, path: Path, alias: str | None, target: Target,
         metrics: tuple[str, ...], offline: bool) -> None:
    """Register the model at PATH as NAME in the MLflow of stack FILE.

    PATH is one of: an MLflow model directory (with an MLmodel file); a
    TensorFlow SavedModel directory (saved_model.pb + variables/, for
    tfserving); a TorchScript file (torch.jit.save, for torchserve); a pickle
    of a scikit-learn model or of a callable taking a DataFrame (wrapped as a
    pyfunc, for fastapi). Pushing the same content again reuses its version.

    \b
    Examples:
      swarmai models push stacks/dev.yaml iris registry/examples/iris.pkl --alias production
      swarmai models push stack.yaml churn ./mlruns/model --alias staging -t compose
      swarmai models push stacks/vision.yaml resnet resnet.pt --alias production
      swarmai models push stacks/dev.yaml iris iris.pkl --alias staging --metric accuracy=0.97
      swarmai models push stacks/vision.yaml bert ./bert_savedmodel --alias production
    """
    def action() -> ModelVersion:
        return _registry(stack_file, target, offline).push(name, path, alias,
                                                           _parse_metrics(metrics))

    result = run_action(action)
    aliases = ", ".join(result.aliases) or "no alias"
    click.echo(f"{result.name} version {result.version} ({aliases})")


@models.command("list")
@stack_file_argument()
@click.option("--target", "-t", type=TARGETS, default="swarm", show_default=True)
@offline_option()
@output_option()
def list_command(stack_file: Path, target: Target, offline: bool, output_format: str) -> None:
    """List registered models, their versions and aliases, in the MLflow of stack FILE.

    \b
    Examples:
      swarmai models list stacks/dev.yaml -t compose
    """
    def action() -> list[ModelVersion]:
        return _registry(stack_file, target, offline).versions()

    versions = run_action(action)
    if output_format == "json":
        click.echo(json.dumps([version.as_dict() for version in versions], indent=2))
        return
    for version in versions:
        aliases = ", ".join(version.aliases) or "-"
        click.echo(f"{version.name:24} {version.version:>6}  {aliases}")


@models.command("describe")
@stack_file_argument()
@click.argument("name")
@click.option("--version", "versions", multiple=True,
              help="Also describe this version (repeatable); every alias's version is shown.")
@click.option("--target", "-t", type=TARGETS, default="swarm", show_default=True)
@offline_option()
@output_option()
def describe_command(stack_file: Path, name: str, versions: tuple[str, ...], target: Target,
                     offline: bool, output_format: str) -> None:
    """Show registered model NAME: its aliases, versions and their runs' metrics.

    Also shows swarmai's own tags: the version each alias pointed at before
    its last promotion (swarmai.previous.ALIAS) and a running canary
    (swarmai.canary.ALIAS). The JSON form is what promotion policies read.

    \b
    Examples:
      swarmai models describe stacks/dev.yaml iris
      swarmai models describe stacks/dev.yaml iris --version 4 --output json
    """
    def action() -> ModelDescription:
        return _registry(stack_file, target, offline).describe(name, versions)

    described = run_action(action)
    if output_format == "json":
        click.echo(json.dumps(described.as_dict(), indent=2))
        return
    by_version: dict[int, list[str]] = {}
    for alias, version in described.aliases.items():
        by_version.setdefault(version, []).append(alias)
    for version, facts in sorted(described.versions.items(), key=lambda kv: -kv[0]):
        metrics = ", ".join(f"{k}={v:g}" for k, v in sorted(facts.metrics.items())) or "-"
        aliases = ", ".join(sorted(by_version.get(version, []))) or "-"
        click.echo(f"{name} version {version:>4}  aliases: {aliases:20}  metrics: {metrics}")
    for key, value in sorted(described.tags.items()):
        click.echo(f"{key} = {value}")


@click.group()
def images() -> None:
    """The container images stacks run."""


@images.command("build")
@offline_option()
@click.option("--only", multiple=True, help="Build just these image keys (and what they need).")
@click.option("--verbose", "-v", is_flag=True, help="Show the builds' own output too.")
def build(offline: bool, only: tuple[str, ...], verbose: bool) -> None:
    """Build swarmai's own images (and with --offline, every third-party one) locally.

    Everything is built from Debian and PyPI packages, FROM one debootstrapped
    Debian base: no container registry is needed. Tags are content hashes, so a
    second build with nothing changed finishes in seconds.

    \b
    Examples:
      swarmai images build
      swarmai images build --offline
    """
    def report(line: str) -> None:
        # Build output comes indented; a failure's error carries its tail anyway.
        if verbose or not line.startswith("    "):
            progress(line)

    def action() -> list[BuildResult]:
        return build_images(Engine.from_env(), offline=offline, progress=report,
                            only=list(only))

    for result in run_action(action):
        click.echo(f"{result.key:12} {result.tag}  "
                   + (f"built in {result.seconds:.0f} s" if result.built else "present"))


@images.command("push")
@stack_file_argument()
@click.option("--target", "-t", type=TARGETS, default="swarm", show_default=True,
              help="Where the stack runs: swarm (deploy) or compose (up).")
@offline_option()
def push_images(stack_file: Path, target: Target, offline: bool) -> None:
    """Push the images stack FILE runs to its registry (images.registry in the stack).

    Each image is pushed from this engine unless the registry has it already
    (tags are content hashes: the same tag is the same image), and printed
    with the digest every node will run. `swarmai deploy` does the same
    before deploying; run this where the images were built when deploy runs
    on another machine. Log in first: `docker login HOST:PORT`.

    \b
    Examples:
      swarmai images build --offline && swarmai images push stack.yaml --offline
    """
    def action() -> list[PublishedImage]:
        stack = load_stack(stack_file, target)
        if stack.image_registry is None:
            raise UsageError(f"{stack_file}: images.registry is not set; add "
                             "`images: {registry: HOST:PORT}` to the stack")
        images = stack_images(stack, target, offline=offline)
        return publish(Engine.from_env(), stack.image_registry, images, progress)

    for image in run_action(action):
        click.echo(f"{image.key:12} {image.remote}  {'pushed' if image.pushed else 'present'}")


def _parse_metrics(pairs: tuple[str, ...]) -> dict[str, float]:
    """``("accuracy=0.9",)`` -> ``{"accuracy": 0.9}``; a malformed pair is a usage error."""
    found: dict[str, float] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        try:
            if not sep or not key.strip():
                raise ValueError(pair)
            found[key.strip()] = float(value)
        except ValueError:
            raise click.BadParameter(f"{pair!r}: write KEY=NUMBER, e.g. accuracy=0.93",
                                     param_hint="--metric") from None
    return found
