"""What every lifecycle command does before touching the engine.

Resolve the images (local builds with ``--offline``), render the bundle into
the stack's state directory, and work out the secret values to create when a
secret does not exist yet.  Deploy (Swarm) and up (Compose) share all of it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from swarmai import engine as docker
from swarmai.engine import Engine, random_token
from swarmai.errors import OperationError, UsageError
from swarmai.gateway_check import RouteCheck
from swarmai.host import resolve_ipvs
from swarmai.output import write_bundle
from swarmai.render import Bundle, Serving, render_bundle
from swarmai.render.naming import MODELS_NET
from swarmai.spec import Stack, Target, image_for
from swarmai.spec.models import FrozenDict

# Services brought up before the models, so the registry can be checked (and
# filled) before any model server starts.  Not the gateway: its routes depend
# on the models, and a deploy that stops at the check must change nothing else.
_REGISTRY_SERVICES = ("mlflow", "postgres", "s3")


@dataclass(frozen=True)
class Prepared:
    stack: Stack  # with the images actually used
    target: Target
    bundle: Bundle
    directory: Path
    ipvs: bool = True

    @property
    def main_file(self) -> Path:
        return self.directory / self.bundle.main

    @property
    def models_network(self) -> str:
        return f"{self.stack.name}_{MODELS_NET}"

    @property
    def server_image(self) -> str:
        return image_for(self.stack.images, "fastapi")


@dataclass
class StartReport:
    """What deploy (Swarm) or up (Compose) did."""

    prepared: Prepared
    created_secrets: list[str] = field(default_factory=list)
    revealed: list[Path] = field(default_factory=list)  # private files with generated logins
    routes: list[RouteCheck] = field(default_factory=list)
    pruned_configs: list[str] = field(default_factory=list)
    seconds: float = 0.0


def state_directory(stack: Stack, target: Target, override: Path | None = None) -> Path:
    """Where a stack's rendered files (and Compose secrets) live between commands."""
    if override is not None:
        return override
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "swarmai" / f"{stack.name}-{target}"


def with_images(stack: Stack, *, offline: bool) -> Stack:
    """``stack`` with swarmai's own image tags (and with ``offline``, local builds of the
    third-party ones) filled in wherever the stack's ``images:`` does not say otherwise."""
    from swarmai.images import image_tags

    images = {**image_tags(offline=offline), **stack.images}
    return stack.model_copy(update={"images": FrozenDict(images)})


def prepare(
    stack: Stack, target: Target, *, offline: bool, state_dir: Path | None = None,
    ipvs: bool | None = None,
) -> Prepared:
    """Render ``stack`` for ``target`` into its state directory."""
    stack = with_images(stack, offline=offline)
    ipvs = resolve_ipvs(stack, ipvs)
    bundle = render_bundle(stack, target, ipvs=ipvs)
    directory = state_directory(stack, target, state_dir)
    write_bundle(bundle, directory)
    return Prepared(stack, target, bundle, directory, ipvs)


def pin(prepared: Prepared, serving: Serving) -> Prepared:
    """Re-render with the versions the registry resolved (and its canaries), and write it."""
    bundle = render_bundle(prepared.stack, prepared.target, ipvs=prepared.ipvs, serving=serving)
    write_bundle(bundle, prepared.directory)
    return replace(prepared, bundle=bundle)


def require_local_images(engine: Engine, prepared: Prepared, *, offline: bool) -> None:
    """Fail early, with the command to run, when images swarmai builds are not built yet."""
    from swarmai.images import image_tags

    ours = set(image_tags(offline=offline).values())
    wanted = sorted(ref for ref in _images_in_bundle(prepared) if ref in ours)
    missing = docker.missing_images(engine, wanted)
    if missing:
        flag = " --offline" if offline else ""
        raise OperationError(
            f"image(s) {', '.join(missing)} are not built on this engine yet; "
            f"run `swarmai images build{flag}` first (seconds when nothing changed)")


def _images_in_bundle(prepared: Prepared) -> set[str]:
    """The images the rendered services use (no TorchServe model: no TorchServe image)."""
    document = yaml.safe_load(prepared.bundle.files[prepared.bundle.main])
    return {service["image"] for service in document["services"].values() if "image" in service}


def registry_only_file(prepared: Prepared) -> Path:
    """A copy of the main file with only the registry services.

    Their definitions are identical to the full file's, so deploying the full
    file afterwards does not restart them.
    """
    document = yaml.safe_load(prepared.bundle.files[prepared.bundle.main])
    document["services"] = {
        name: service for name, service in document["services"].items()
        if name in _REGISTRY_SERVICES
    }
    path = prepared.directory / f"registry-{prepared.bundle.main}"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def registry_services(prepared: Prepared) -> list[str]:
    names = yaml.safe_load(prepared.bundle.files[prepared.bundle.main])["services"]
    return [name for name in names if name in _REGISTRY_SERVICES]


@dataclass(frozen=True)
class SecretValue:
    content: str
    # What the user must be told once when the secret is created (a password
    # whose stored form is a hash); written to a private file, never printed.
    reveal: str | None = None


def secret_values(stack: Stack) -> dict[str, SecretValue]:
    """A fresh value for each secret swarmai may generate; used only when it is missing.

    An external store's keys cannot be invented, so that secret is not here.
    """
    values: dict[str, SecretValue] = {}
    storage = stack.storage
    if storage.backend != "external":
        values[storage.credentials_secret] = SecretValue(
            "[default]\n"
            f"aws_access_key_id = swarmai{random_token(12)}\n"
            f"aws_secret_access_key = {random_token(40)}\n"
        )
    if stack.registry.backend_store == "postgres":
        values[stack.registry.db_password_secret] = SecretValue(random_token(32))
    if stack.gateway.auth is not None:
        values[stack.gateway.auth.basic_users_secret] = _htpasswd("swarmai")
    return values


def _htpasswd(user: str) -> SecretValue:
    import bcrypt

    password = random_token(24)
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()
    # Same algorithm; $2y$ is the prefix every htpasswd reader accepts.
    line = f"{user}:{hashed.replace('$2b$', '$2y$', 1)}\n"
    return SecretValue(line, reveal=f"{user}:{password}\n")


def external_secret_hint(stack: Stack) -> str:
    return (
        f"create it with your store's keys: printf '[default]\\naws_access_key_id = KEY\\n"
        f"aws_secret_access_key = SECRET\\n' | docker secret create "
        f"{stack.storage.credentials_secret} -"
    )


def require(condition: bool, message: str) -> None:
    if not condition:
        raise UsageError(message)
