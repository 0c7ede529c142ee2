"""Backup and restore on the real engine: Swarm, Postgres, SeaweedFS, MLflow.

Three models (several versions, aliases, a canary tag) are deployed and backed
up -> rm --volumes -> deployed empty (it stops at "push, then deploy") ->
restored -> every version, alias and tag is back and, deployed, every server
(the canary's too) serves the version it served before; a second backup of the
restored stack holds the same artifacts, byte for byte (sha256) -> restoring
over the non-empty registry without --replace exits 2 and changes nothing, and
so does a corrupt snapshot -> a snapshot made into another S3 bucket (its own
SeaweedFS) is restored from there with --replace over the live stack, which keeps
serving the same versions.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lifecycle import engine_snapshot, swarmai

pytestmark = pytest.mark.e2e

NAME = "e2ebk"
PORT = 18900
MODELS = ("alpha", "beta", "gamma")
STACK = f"""\
version: 1
name: {NAME}
gateway: {{port: {PORT}, tls: {{mode: "off"}}}}
network: {{ipvs: auto}}
storage: {{backend: seaweedfs, bucket: models, credentials_secret: {NAME}-s3}}
registry: {{backend_store: postgres, db_password_secret: {NAME}-db}}
models:
""" + "".join(f"""\
  - name: {model}
    runtime: fastapi
    model: models:/{model}@production
""" for model in MODELS)

MAKE_MODELS = """
import sys
import cloudpickle

def constant(value):
    def predict(frame):
        return [value] * len(frame)
    return predict

for value in (1, 2, 3):
    with open(f"{sys.argv[1]}/v{value}.pkl", "wb") as handle:
        cloudpickle.dump(constant(float(value)), handle)
"""
# model -> (pickle, alias) in push order: version numbers follow it.
PUSHES = {"alpha": (("v1", "production"), ("v2", "staging"), ("v3", None)),
          "beta": (("v1", "production"),),
          "gamma": (("v2", "production"), ("v3", "staging"))}


def _registry(stack: Path) -> Any:
    from swarmai.engine import Engine
    from swarmai.lifecycle.steps import registry_target
    from swarmai.registry_client import RegistryClient
    from swarmai.spec import load_stack

    target = registry_target(load_stack(stack, "swarm"), offline=True)
    return RegistryClient(Engine.from_env(), target)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory,
             offline_images: dict[str, str]) -> Iterator[dict[str, Any]]:
    """The stack deployed with the models of PUSHES, a canary of alpha's version 2."""
    from swarmai import modeluri

    root = tmp_path_factory.mktemp("backup")
    stack = root / f"{NAME}.yaml"
    stack.write_text(STACK)
    swarmai("rm", str(stack), "--volumes")  # a previous run's leftovers, if any
    before = _ours()
    subprocess.run([sys.executable, "-c", MAKE_MODELS, str(root)], check=True)
    empty = swarmai("deploy", str(stack), "--offline")
    assert empty.returncode == 1, empty.stderr
    for model, pushes in PUSHES.items():
        for pickle, alias in pushes:
            pushed = swarmai("models", "push", str(stack), model, str(root / f"{pickle}.pkl"),
                             "--offline", *(["--alias", alias] if alias else []))
            assert pushed.returncode == 0, pushed.stderr
    _registry(stack).set_tag("alpha", modeluri.canary_tag("production"),
                             modeluri.encode_canary(2, 50))
    first = swarmai("deploy", str(stack), "--offline")
    assert first.returncode == 0, first.stderr
    try:
        yield {"stack": stack, "root": root}
    finally:
        removed = swarmai("rm", str(stack), "--volumes")
        assert removed.returncode == 0, removed.stderr
        assert _ours() == before


def _ours() -> dict[str, set[str]]:
    """What this module's stack has on the engine (others' tests run beside it)."""
    return {kind: {name for name in names if NAME in name}
            for kind, names in engine_snapshot().items()}


def _served(stack: Path) -> dict[str, str]:
    """Each model server -> the version it serves (status asks each through the gateway);
    the canary, which has no route of its own until a promotion weights it, -> the
    version its service is pinned to."""
    from swarmai.engine import Engine

    status = swarmai("status", str(stack), "--output", "json")
    assert status.returncode == 0, status.stderr
    served = {row["service"]: row["version"] for row in json.loads(status.stdout)
              if row["model"]}
    spec = Engine.from_env().api.inspect_service(f"{NAME}_model-alpha-canary")["Spec"]
    env = spec["TaskTemplate"]["ContainerSpec"].get("Env") or []
    served["model-alpha-canary"] = next(v.split("=", 1)[1] for v in env if "=models:/" in v)
    return served


def _backup(stack: Path, folder: Path) -> tuple[Path, dict[str, Any]]:
    made = swarmai("backup", str(stack), str(folder), "--offline")
    assert made.returncode == 0, made.stderr
    snapshot = Path(made.stdout.strip().splitlines()[-1])
    assert snapshot.parent == folder.resolve() and snapshot.is_dir()
    assert not list(folder.glob("*.partial"))
    return snapshot, json.loads((snapshot / "manifest.json").read_text())


def test_backup_then_restore_into_an_empty_stack_brings_everything_back(
        deployed: dict[str, Any]) -> None:
    from swarmai.lifecycle.backup_manifest import sha256_of

    stack, root = deployed["stack"], deployed["root"]
    served = _served(stack)
    assert served == {"model-alpha": "1", "model-alpha-canary": "models:/alpha/2",
                      "model-beta": "1", "model-gamma": "1"}
    registered = _registry(stack).summary()
    snapshot, manifest = _backup(stack, root / "backups")
    counts = manifest["counts"]
    assert (counts["models"], counts["versions"], counts["aliases"]) == (3, 6, 5)
    assert json.loads(manifest["registry"]["models"]["alpha"]["tags"]["swarmai.canary.production"]
                      )["version"] == "2"
    assert manifest["backend_store"] == "postgres" and manifest["postgres_major"] >= 13
    assert manifest["artifacts"]["objects"]
    for entry in manifest["artifacts"]["objects"]:  # the files are what the manifest says
        assert sha256_of(snapshot / "artifacts" / entry["key"]) == entry["sha256"]

    removed = swarmai("rm", str(stack), "--volumes")
    assert removed.returncode == 0, removed.stderr
    empty = swarmai("deploy", str(stack), "--offline")
    assert empty.returncode == 1 and "swarmai models push" in empty.stderr, empty.stderr
    restored = swarmai("restore", str(stack), str(snapshot), "--offline")
    assert restored.returncode == 0, restored.stderr
    assert (f"restored 3 models, 6 versions, 5 aliases, {counts['tags']} tags"
            in restored.stdout)
    assert "not running yet: model-alpha, model-beta, model-gamma" in restored.stdout
    assert _registry(stack).summary() == registered
    redeployed = swarmai("deploy", str(stack), "--offline")
    assert redeployed.returncode == 0, redeployed.stderr
    assert _served(stack) == served
    _, again = _backup(stack, root / "again")
    assert again["artifacts"]["objects"] == manifest["artifacts"]["objects"]
    assert again["registry"] == manifest["registry"]


def test_restore_refuses_a_non_empty_registry_and_a_corrupt_snapshot(
        deployed: dict[str, Any]) -> None:
    stack, root = deployed["stack"], deployed["root"]
    snapshot = next((root / "backups").glob(f"{NAME}-*"))
    registered = _registry(stack).summary()
    refused = swarmai("restore", str(stack), str(snapshot), "--offline")
    assert refused.returncode == 2, refused.stderr
    assert "--replace" in refused.stderr and "nothing was changed" in refused.stderr
    corrupt = root / "corrupt"
    shutil.copytree(snapshot, corrupt)
    dump = corrupt / "registry.dump"
    data = dump.read_bytes()
    dump.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # one byte flipped
    broken = swarmai("restore", str(stack), str(corrupt), "--offline", "--replace")
    assert broken.returncode == 2, broken.stderr
    assert str(dump) in broken.stderr and "sha256" in broken.stderr
    assert _registry(stack).summary() == registered


@pytest.fixture(scope="module")
def other_s3(tmp_path_factory: pytest.TempPathFactory, docker_cli: str,
             offline_images: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Another S3 server (swarmai's SeaweedFS image, alone, on 127.0.0.1) with an empty
    bucket ``backups``, and an AWS credentials file for it."""
    import secrets
    import time

    from minio import Minio

    files = tmp_path_factory.mktemp("other-s3")
    access, secret = f"bk{secrets.token_hex(6)}", secrets.token_urlsafe(24)
    identities = files / "s3.json"
    identities.write_text(json.dumps({"identities": [{
        "name": "backups", "credentials": [{"accessKey": access, "secretKey": secret}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    keys = files / "credentials"
    keys.write_text(f"[default]\naws_access_key_id = {access}\n"
                    f"aws_secret_access_key = {secret}\n")
    keys.chmod(0o600)
    identities.chmod(0o644)  # read by the container's user
    started = subprocess.run(
        [docker_cli, "run", "-d", "--rm", "-p", "127.0.0.1::8333", "--tmpfs", "/data",
         "-v", f"{identities}:/etc/swarmai/s3.json:ro", offline_images["seaweedfs"],
         "server", "-dir=/data", "-master.volumeSizeLimitMB=64", "-volume.max=0", "-s3",
         "-s3.port=8333", "-s3.config=/etc/swarmai/s3.json"],
        capture_output=True, text=True, check=True, timeout=60)
    container = started.stdout.strip()
    try:
        port = subprocess.run([docker_cli, "port", container, "8333/tcp"], capture_output=True,
                              text=True, check=True).stdout.split(":")[-1].strip()
        client = Minio(f"127.0.0.1:{port}", access_key=access, secret_key=secret,
                       secure=False, region="us-east-1")
        deadline = time.monotonic() + 60
        while True:
            try:
                client.make_bucket("backups")
                break
            except Exception:
                assert time.monotonic() < deadline, "the S3 server did not start in 60 s"
                time.sleep(1)
        yield {"endpoint": f"http://127.0.0.1:{port}", "keys": keys, "client": client}
    finally:
        subprocess.run([docker_cli, "rm", "-f", container], capture_output=True, check=False)


def test_a_snapshot_in_another_s3_bucket_restores_over_the_live_stack_with_replace(
        deployed: dict[str, Any], other_s3: dict[str, Any]) -> None:
    stack = deployed["stack"]
    served = _served(stack)
    remote = ["--s3-endpoint", other_s3["endpoint"], "--s3-credentials", str(other_s3["keys"])]
    made = swarmai("backup", str(stack), "s3://backups/nightly", "--offline", *remote)
    assert made.returncode == 0, made.stderr
    uri = made.stdout.strip().splitlines()[-1]
    assert uri.startswith(f"s3://backups/nightly/{NAME}-"), uri
    prefix = uri.removeprefix("s3://backups/") + "/"
    keys = {o.object_name for o in other_s3["client"].list_objects(
        "backups", prefix=prefix, recursive=True)}
    assert prefix + "manifest.json" in keys and prefix + "registry.dump" in keys
    # Over a registry with models: the snapshot is downloaded and checked, then loaded;
    # a re-run over a live stack changes nothing it serves.
    again = swarmai("restore", str(stack), uri, "--offline", "--replace", *remote)
    assert again.returncode == 0, again.stderr
    assert all(f"restarted model-{model}" in again.stdout for model in MODELS)
    assert _served(stack) == served
    cut_short = swarmai("restore", str(stack), f"s3://backups/nightly/{NAME}-none",
                        "--offline", "--replace", *remote)
    assert cut_short.returncode == 2, cut_short.stderr
    assert "not a snapshot" in cut_short.stderr
