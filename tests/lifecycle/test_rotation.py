"""The rotation state machine (lifecycle/rotation.py) against a fake engine: the happy
path, and a run killed after every single engine call, then run again."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest

from swarmai.errors import OperationError, UsageError
from swarmai.lifecycle.rotation import (
    next_name,
    require_rotatable,
    rotate,
)
from swarmai.lifecycle.rotation_db import parse_probe
from swarmai.lifecycle.secrets import SecretValue, claimed_by_other_stacks, yaml_paths
from swarmai.spec import Stack

NAME = "app-db"
STAGED = next_name(NAME)


class Killed(Exception):
    """The process died here."""


class FakeEngine:
    """Secrets (immutable, write-only as on Swarm), services mounting them at target
    NAME, and a database with one password; ``budget`` calls before the run dies."""

    def __init__(self, users: Sequence[str] = ("app_mlflow", "app_postgres")) -> None:
        self.secrets = {NAME: "v0"}
        self.sources = dict.fromkeys(users, NAME)
        self.seen = dict.fromkeys(users, "v0")  # the value each service started with
        self.password = "v0"
        self.budget = 10**6
        self.calls: list[str] = []

    def tick(self, call: str) -> None:
        if self.budget <= 0:
            raise Killed(call)
        self.budget -= 1
        self.calls.append(call)


class FakeVault:
    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine

    def exists(self, name: str) -> bool:
        return name in self.engine.secrets

    def create(self, name: str, value: str) -> None:
        self.engine.tick(f"create {name}")
        if name in self.engine.secrets:
            raise OperationError(f"secret {name} exists")
        self.engine.secrets[name] = value

    def remove(self, name: str) -> None:
        self.engine.tick(f"remove {name}")
        if name in self.engine.sources.values():
            raise OperationError(f"secret {name} is in use")
        self.engine.secrets.pop(name, None)

    def sources(self, target: str) -> dict[str, str]:
        assert target == NAME
        return dict(self.engine.sources)

    def point(self, services: Sequence[str], target: str, source: str) -> None:
        for service in services:
            self.engine.tick(f"point {service} {source}")
            self.engine.sources[service] = source
            self.engine.seen[service] = self.engine.secrets[source]


class FakeDatabase:
    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine

    def accepts(self, secret: str) -> bool:
        return self.engine.secrets[secret] == self.engine.password

    def set_password(self, current: str, new: str) -> None:
        self.engine.tick(f"alter {new}")
        if not self.accepts(current):
            raise OperationError("password authentication failed")
        self.engine.password = self.engine.secrets[new]


def fresh_values() -> itertools.count[int]:
    return itertools.count(1)


def run(engine: FakeEngine, database: bool, counter: itertools.count[int]) -> None:
    rotate(FakeVault(engine), NAME, lambda: SecretValue(f"v{next(counter)}"),
           FakeDatabase(engine) if database else None, lambda _line: None)


def assert_rotated(engine: FakeEngine, database: bool) -> None:
    assert set(engine.secrets) == {NAME}  # NAME.next is gone, NAME is there
    value = engine.secrets[NAME]
    assert value != "v0"
    assert set(engine.sources.values()) == {NAME}
    assert set(engine.seen.values()) == {value}  # every service runs with the new value
    if database:
        assert engine.password == value


@pytest.mark.parametrize("database", [True, False])
def test_one_run_rotates_once_and_keeps_the_name(database: bool) -> None:
    engine = FakeEngine()
    run(engine, database, fresh_values())
    assert_rotated(engine, database)
    assert engine.secrets[NAME] == "v1"  # one new value, stored twice
    assert [c for c in engine.calls if c.startswith("alter")] == (
        [f"alter {STAGED}"] if database else [])


@pytest.mark.parametrize("database", [True, False])
def test_a_run_killed_after_any_step_is_finished_by_the_next(database: bool) -> None:
    total = FakeEngine()
    run(total, database, fresh_values())
    for budget in range(len(total.calls)):
        engine = FakeEngine()
        engine.budget = budget
        counter = fresh_values()
        with pytest.raises(Killed):
            run(engine, database, counter)
        engine.budget = 10**6
        run(engine, database, counter)
        assert_rotated(engine, database)


def test_a_second_rotation_gives_another_value() -> None:
    engine = FakeEngine()
    counter = fresh_values()
    run(engine, True, counter)
    run(engine, True, counter)
    assert_rotated(engine, True)
    assert engine.secrets[NAME] == "v2"


def test_a_secret_no_service_mounts_is_refused_before_anything_changes() -> None:
    engine = FakeEngine(users=())
    with pytest.raises(UsageError, match="deploy the stack first"):
        run(engine, True, fresh_values())
    assert engine.calls == []


def stack(**storage: str) -> Stack:
    return Stack.model_validate({
        "version": 1, "name": "app",
        "storage": {"backend": "seaweedfs", "credentials_secret": "app-s3", **storage},
        "registry": {"backend_store": "postgres", "db_password_secret": "app-db"},
        "models": [{"name": "m", "runtime": "fastapi", "model": "models:/m@production"}],
    })


def test_only_the_stacks_generated_secrets_may_be_rotated() -> None:
    assert yaml_paths(stack()) == {"app-s3": "storage.credentials_secret",
                                   "app-db": "registry.db_password_secret",
                                   "gateway-tls": "gateway.tls.secret"}
    require_rotatable(stack(), "app-db", "app.yaml")
    with pytest.raises(UsageError) as unknown:
        require_rotatable(stack(), "other", "app.yaml")
    assert "app.yaml" in str(unknown.value)
    assert "app-db (registry.db_password_secret)" in str(unknown.value)
    external = stack(backend="external", endpoint="https://s3.example.com")
    with pytest.raises(UsageError, match="external S3 store"):
        require_rotatable(external, "app-s3", "app.yaml")
    yours = Stack.model_validate({**stack().model_dump(),
                                  "gateway": {"tls": {"mode": "secret", "secret": "mine"}}})
    with pytest.raises(UsageError, match="swarmai did not issue it"):
        require_rotatable(yours, "mine", "app.yaml")


def test_each_login_secret_is_rotatable_where_the_stack_file_first_names_it() -> None:
    data = stack().model_dump()
    data["gateway"] = {"auth": {"basic_users_secret": "app-logins"}}
    data["models"] = [
        {**data["models"][0], "name": name, "gateway": {"auth": {"basic_users_secret": "team"}}}
        for name in ("a", "b")]
    grouped = Stack.model_validate(data)
    paths = yaml_paths(grouped)
    assert paths["app-logins"] == "gateway.auth.basic_users_secret"
    assert paths["team"] == "models[0].gateway.auth.basic_users_secret"
    require_rotatable(grouped, "team", "app.yaml")


def test_the_probe_answer_is_read_per_secret() -> None:
    output = "app-db refused\napp-db.next accepted\n"
    assert parse_probe(output, "app-db.next") is True
    assert parse_probe(output, "app-db") is False
    with pytest.raises(OperationError):
        parse_probe("", "app-db")


def test_a_failed_roll_says_that_the_same_command_finishes_it() -> None:
    engine = FakeEngine()

    class Unhealthy(FakeVault):
        def point(self, services: Sequence[str], target: str, source: str) -> None:
            raise OperationError("stack app: mlflow failed")

    with pytest.raises(OperationError) as failed:
        rotate(Unhealthy(engine), NAME, lambda: SecretValue("v1"), None, lambda _line: None)
    assert "mlflow failed" in str(failed.value)
    assert "run the same command again" in str(failed.value)
    run(engine, False, itertools.count(2))
    assert_rotated(engine, False)


def test_a_secret_generated_for_another_stack_is_refused_with_its_yaml_path() -> None:
    app = stack()
    assert claimed_by_other_stacks(app, {}) == []
    # Its own secrets, and other stacks' that it does not name, are fine.
    assert claimed_by_other_stacks(app, {"app-s3": "app", "other-s3": "other"}) == []
    [problem] = claimed_by_other_stacks(app, {"app-s3": "app", "gateway-tls": "other"})
    assert problem.startswith("gateway.tls.secret: secret gateway-tls is the one swarmai "
                              "generated for stack other")
    assert problem.endswith(f"for example {app.name}-gateway-tls")
