"""The secrets a stack needs, and the fresh values swarmai generates for missing ones.

A value here is used only when its secret does not exist yet: deploy and up
never overwrite a secret (a database's password must outlive any deploy).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from swarmai import tlsca
from swarmai.engine import random_token
from swarmai.spec import Stack


@dataclass(frozen=True)
class SecretValue:
    content: str
    # What the user must be told once when the secret is created (a password
    # whose stored form is a hash); written to a private file, never printed.
    reveal: str | None = None
    # What to print when it is created (how to trust the CA of a certificate).
    note: str | None = None


# Makes a fresh value for one secret.
Fresh = Callable[[], SecretValue]


def fresh_secrets(stack: Stack) -> dict[str, Fresh]:
    """How to make a fresh value for each secret swarmai may generate; called only for
    one that is missing (making a certificate may create swarmai's local CA, and a
    stack whose secrets exist must not create one behind the user's back).

    An external store's keys cannot be invented, so that secret is not here.
    """
    fresh: dict[str, Fresh] = {}
    if stack.storage.backend != "external":
        fresh[stack.storage.credentials_secret] = _s3_keys
    if stack.registry.backend_store == "postgres":
        fresh[stack.registry.db_password_secret] = lambda: SecretValue(random_token(32))
    for login in stack.login_secrets():  # the stack's login and each route's own
        fresh[login] = lambda: _htpasswd("swarmai")
    if stack.gateway.tls.mode == "local":
        fresh[stack.gateway.tls.secret] = lambda: _local_certificate(stack)
    return fresh


def _s3_keys() -> SecretValue:
    return SecretValue("[default]\n"
                       f"aws_access_key_id = swarmai{random_token(12)}\n"
                       f"aws_secret_access_key = {random_token(40)}\n")


def yaml_paths(stack: Stack) -> dict[str, str]:
    """Each secret the stack names -> where in the stack file it is named."""
    paths = {stack.storage.credentials_secret: "storage.credentials_secret"}
    if stack.registry.backend_store == "postgres":
        paths[stack.registry.db_password_secret] = "registry.db_password_secret"
    paths.update(stack.login_secrets())
    if stack.gateway.tls.mode in ("local", "secret"):
        paths[stack.gateway.tls.secret] = "gateway.tls.secret"
    return paths


def claimed_by_other_stacks(stack: Stack, generated_for: Mapping[str, str]) -> list[str]:
    """What is wrong with each secret ``stack`` names that swarmai generated for another
    stack (``generated_for``: secret -> stack, from the swarm's labels).

    Secret names are global on a Swarm: a stack that used another's generated
    secret would lose it when that stack is removed with its data (or fail the
    removal while it holds it), and could not rotate it.
    """
    return [f"{path}: secret {name} is the one swarmai generated for stack {owner} (secret "
            f"names are shared by the whole swarm); name another one here, for example "
            f"{stack.name}-{name}"
            for name, path in yaml_paths(stack).items()
            if (owner := generated_for.get(name)) not in (None, stack.name)]


@dataclass(frozen=True)
class UserSecret:
    """A secret swarmai cannot generate: it must exist before a deploy."""

    holds: str  # what the secret (a Compose secret file) holds
    create: str  # the command that makes it on Swarm


def user_secrets(stack: Stack) -> dict[str, UserSecret]:
    needed = {}
    if stack.storage.backend == "external":
        needed[stack.storage.credentials_secret] = UserSecret(
            "your store's keys (AWS shared-credentials format)", external_secret_hint(stack))
    if stack.gateway.tls.mode == "secret":
        name = stack.gateway.tls.secret
        needed[name] = UserSecret(
            "your certificate's key and chain, one PEM (cat key.pem fullchain.pem)",
            f"create it with your certificate's key and chain, one PEM: cat key.pem "
            f"fullchain.pem | docker secret create {name} -")
    return needed


def _local_certificate(stack: Stack) -> SecretValue:
    """A gateway certificate from swarmai's local CA, for this machine and ``tls.names``."""
    ca = tlsca.ensure_ca()
    names = (*tlsca.default_names(), *stack.gateway.tls.names)
    return SecretValue(tlsca.issue(ca, names),
                       note=f"the gateway's certificate is for {', '.join(names)}; "
                       + tlsca.trust_hint(ca))


def _htpasswd(user: str) -> SecretValue:
    """A generated gateway login, hashed for a check that costs the gateway microseconds.

    Traefik checks the password of every request, and caches nothing: bcrypt's
    default cost (12) took about 0.6 s of the gateway's CPU per request here,
    which made the login the gateway's throughput limit and a lever for anyone
    to exhaust it.  bcrypt's cost protects guessable passwords; this one is 32
    random characters (about 185 bits), beyond any offline search whatever the
    hash, so the htpasswd ``{SHA}`` form (base64 of SHA-1, which Traefik reads)
    is enough.  A login you write yourself into the secret keeps its own hash.
    """
    password = random_token(32)
    digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    return SecretValue(f"{user}:{{SHA}}{digest}\n", reveal=f"{user}:{password}\n")


def external_secret_hint(stack: Stack) -> str:
    return (
        f"create it with your store's keys: printf '[default]\\naws_access_key_id = KEY\\n"
        f"aws_secret_access_key = SECRET\\n' | docker secret create "
        f"{stack.storage.credentials_secret} -"
    )
