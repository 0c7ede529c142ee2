"""``python -m swarmai.incontainer.registry_ops``: registry operations as JSON.

The host CLI (:mod:`swarmai.registry_client`) runs this inside swarmai's server
image on the stack's network, so MLflow never has to be published.  Output is
one JSON document on stdout; expected failures print ``{"error": ...}`` and
exit 2 (bad input) or 1.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

from swarmai.incontainer.mlflow_rest import RestClient
from swarmai.incontainer.registry_ops import aliases, requirements, summary, versions
from swarmai.incontainer.resolve import RegistryError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m swarmai.incontainer.registry_ops")
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"))
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="resolve model URIs")
    check.add_argument("uris", nargs="+")
    check.add_argument("--requirements-for", action="append", default=[], metavar="URI",
                       help="also read the requirements.txt of the version (and canary) "
                            "this one of the URIs resolves to: one container, not two")
    push = commands.add_parser("push", help="register a model")
    push.add_argument("name")
    push.add_argument("path", type=Path)
    push.add_argument("--alias")
    push.add_argument("--metric", action="append", default=[], metavar="KEY=VALUE")
    commands.add_parser("list", help="list registered versions")
    commands.add_parser("summary", help="every model's versions, aliases and tags")
    describe = commands.add_parser("describe", help="aliases, swarmai tags, version metrics")
    describe.add_argument("name")
    describe.add_argument("--version", action="append", default=[])
    move = commands.add_parser("move-alias", help="point an alias at a version")
    move.add_argument("name")
    move.add_argument("alias")
    move.add_argument("version")
    move.add_argument("--forget", action="store_true", help="do not remember the old target")
    tag = commands.add_parser("tag", help="set or delete a swarmai.* registered-model tag")
    tag.add_argument("name")
    tag.add_argument("key")
    tag.add_argument("value", nargs="?")
    preflight = commands.add_parser("preflight", help="download a version, check it loads")
    preflight.add_argument("name")
    preflight.add_argument("version")
    preflight.add_argument("--runtime", required=True,
                           choices=("fastapi", "tfserving", "torchserve", "app"))
    needs = commands.add_parser("requirements", help="a version's recorded requirements.txt")
    needs.add_argument("uris", nargs="+", metavar="models:/NAME/VERSION")
    args = parser.parse_args(argv)
    if not args.tracking_uri:
        return _fail("no MLflow tracking URI (--tracking-uri or MLFLOW_TRACKING_URI)", 2)
    # MLflow chats on stderr (run links, warnings); keep it for failures only,
    # so a successful call prints just its JSON answer.
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stderr(chatter):
            result = _run(args)
    except RegistryError as error:
        return _fail(str(error), 1, chatter)
    except Exception as error:  # MLflow's own errors: report them, not a traceback
        return _fail(f"{type(error).__name__}: {error}", 1, chatter)
    print(json.dumps(result))
    return 0


# Commands that only look up and move aliases and tags, or read a version's
# requirements: over MLflow's REST API when it is served over HTTP (as in every
# stack), without importing mlflow.
_LOOKUPS = frozenset({"check", "list", "describe", "move-alias", "tag", "requirements"})


def client_for(command: str, tracking_uri: str) -> Any:
    """The client ``command`` needs: mlflow's own to log, download or load models
    (and for a file store), else the light REST client (mlflow_rest)."""
    if command in _LOOKUPS and tracking_uri.startswith(("http://", "https://")):
        return RestClient(tracking_uri)
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    return mlflow.MlflowClient()


def _run(args: argparse.Namespace) -> Any:
    client = client_for(args.command, args.tracking_uri)
    if args.command == "check":
        return [_checked(client, result, args.requirements_for)
                for result in versions.check(client, args.uris)]
    if args.command == "push":
        if not args.path.exists():
            raise RegistryError(f"{args.path} does not exist")
        metrics = _metrics(args.metric)
        return versions.push(client, args.name, args.path, args.alias, metrics).as_dict()
    if args.command == "describe":
        return aliases.describe(client, args.name, args.version)
    if args.command == "move-alias":
        return aliases.move_alias(client, args.name, args.alias, args.version,
                                    remember=not args.forget).as_dict()
    if args.command == "tag":
        aliases.set_tag(client, args.name, args.key, args.value)
        return {"name": args.name, "key": args.key, "value": args.value}
    if args.command == "preflight":
        return aliases.preflight(client, args.name, args.version, args.runtime)
    if args.command == "summary":
        return summary.summary(client)
    if args.command == "requirements":
        return [r.as_dict() for r in requirements.requirements(client, args.uris)]
    return [v.as_dict() for v in versions.list_versions(client)]


def _checked(client: Any, result: versions.CheckResult, requirements_for: list[str]) -> Any:
    answer = result.as_dict()
    if result.found and result.uri in requirements_for:
        served = requirements.of_resolved(client, result.uri, result.version, result.canary)
        answer["requirements"] = [r.as_dict() for r in served]
    return answer


def _metrics(pairs: list[str]) -> dict[str, float]:
    found: dict[str, float] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            found[key.strip()] = float(value)
        except ValueError:
            raise RegistryError(f"--metric {pair!r}: write KEY=NUMBER") from None
    return found


def _fail(message: str, code: int, chatter: io.StringIO | None = None) -> int:
    if chatter is not None:
        sys.stderr.write(chatter.getvalue()[-4000:])
    print(json.dumps({"error": message}))
    return code


if __name__ == "__main__":
    sys.exit(main())
