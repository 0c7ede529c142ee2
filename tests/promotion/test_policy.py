"""Promotion policies: loading, every invalid-policy error by YAML path, and decisions."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from swarmai.errors import SpecError
from swarmai.promotion.policy import Described, Rule, decide, load_policy

REPO = Path(__file__).resolve().parents[2]

STACK = """\
version: 1
name: dev
models:
  - name: iris
    runtime: fastapi
    model: models:/iris@production
  - name: churn
    runtime: fastapi
    model: models:/churn-clf@production
  - name: pinned
    runtime: fastapi
    model: models:/pinned/3
"""

HEAD = """\
version: 1
stack: stack.yaml
target: compose
"""

IRIS = """\
  - model: iris
    from: staging
    to: production
    metric: accuracy
    compare: higher
"""


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "stack.yaml").write_text(STACK, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(folder: Path, text: str, name: str = "policy.yaml") -> str:
    (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return name


def problems(path: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_policy(path)
    return [str(p) for p in caught.value.problems]


def test_example_policy_loads_against_dev_stack() -> None:
    loaded = load_policy(REPO / "registry/examples/policy.example.yaml")
    assert loaded.stack_path == REPO / "stacks/dev.yaml"
    assert loaded.policy.target == "compose" and loaded.policy.offline is True
    assert [r.model for r in loaded.policy.models] == ["iris", "churn"]
    assert {r.source for r in loaded.policy.models} == {"staging"}
    assert loaded.audit_log == REPO / "registry/examples/policy.example.audit.jsonl"
    assert loaded.warnings == ()


def test_defaults_and_relative_paths(in_tmp: Path) -> None:
    path = write(in_tmp, "version: 1\nstack: stack.yaml\nmodels:\n" + IRIS, "prod.yml")
    loaded = load_policy(path)
    policy, rule = loaded.policy, loaded.policy.models[0]
    assert (policy.target, policy.offline) == ("swarm", False)
    assert (rule.minimum, rule.maximum, rule.margin) == (None, None, 0.0)
    assert loaded.audit_log == in_tmp / "prod.audit.jsonl"
    assert loaded.lock_file == in_tmp / "prod.audit.jsonl.lock"
    assert loaded.state_dir is None
    assert loaded.registered == {"iris": "iris"}


def test_explicit_paths_and_registered_names(in_tmp: Path) -> None:
    (in_tmp / "sub").mkdir()
    path = write(in_tmp, HEAD.replace("stack.yaml", "../stack.yaml")
                 + "audit_log: logs/audit.jsonl\nlock_file: /tmp/x.lock\nstate_dir: state\n"
                 + "models:\n"
                 + IRIS.replace("iris", "churn"), "sub/p.yaml")
    loaded = load_policy(path)
    assert loaded.audit_log == in_tmp / "sub/logs/audit.jsonl"
    assert loaded.lock_file == Path("/tmp/x.lock")
    assert loaded.state_dir == in_tmp / "sub/state"
    assert loaded.registered == {"churn": "churn-clf"}


def test_warns_when_the_stack_does_not_serve_the_target_alias(in_tmp: Path) -> None:
    path = write(in_tmp, HEAD + "models:\n" + IRIS.replace("iris", "pinned")
                 + IRIS.replace("production", "canary"))
    assert load_policy(path).warnings == (
        "policy.yaml: models[0].to: stack model 'pinned' serves models:/pinned/3; "
        "moving alias 'production' does not change what it serves",
        "policy.yaml: models[1].to: stack model 'iris' serves models:/iris@production; "
        "moving alias 'canary' does not change what it serves",
    )


def rule_text(**changes: Any) -> str:
    """IRIS with keys replaced (value None drops the key)."""
    fields: dict[str, Any] = {"model": "iris", "from": "staging", "to": "production",
                              "metric": "accuracy", "compare": "higher"}
    fields.update(changes)
    lines = [f"{k}: {v}" for k, v in fields.items() if v is not None]
    return "  - " + "\n    ".join(lines) + "\n"


INVALID = [
    (HEAD + "modles: []\n",
     "policy.yaml: modles: unknown key 'modles' (did you mean 'models'?)"),
    (HEAD + "models:\n" + rule_text(metrik="loss"),
     "policy.yaml: models[0].metrik: unknown key 'metrik' (did you mean 'metric'?)"),
    (HEAD + "models:\n" + IRIS + rule_text(model="churn", metric=None),
     "policy.yaml: models[1].metric: is required but missing (add metric:)"),
    (HEAD + "models:\n" + rule_text(compare="better"),
     "policy.yaml: models[0].compare: Input should be 'higher', 'lower' or 'none' "
     "(got 'better')"),
    (HEAD + "models:\n" + rule_text(min="high"),
     "policy.yaml: models[0].min: Input should be a valid number (got 'high')"),
    (HEAD + "models:\n" + rule_text(min=".nan"),
     "policy.yaml: models[0].min: Input should be a finite number (got nan)"),
    (HEAD + "models:\n" + rule_text(margin=-0.1),
     "policy.yaml: models[0].margin: Input should be greater than or equal to 0 (got -0.1)"),
    (HEAD + "models:\n" + rule_text(**{"from": "latest"}),
     "policy.yaml: models[0].from: alias 'latest' is reserved by MLflow (use another alias name)"),
    (HEAD + "models:\n" + rule_text(to="'prod uction'"),
     "policy.yaml: models[0].to: 'prod uction' is not an MLflow alias (letters, digits, _ and -)"),
    (HEAD + "models:\n" + rule_text(metric="' '"),
     "policy.yaml: models[0].metric: must not be empty"),
    (HEAD + "models:\n" + rule_text(to="staging"),
     "policy.yaml: models[0].to: is the same alias as from ('staging') "
     "(promote from a candidate alias such as staging)"),
    (HEAD + "models:\n" + rule_text(compare="none"),
     "policy.yaml: models[0].compare: 'none' without min or max would promote every candidate "
     "(add min: or max:, or compare: higher / lower)"),
    (HEAD + "models:\n" + rule_text(compare="none", min=0.5, margin=0.1),
     "policy.yaml: models[0].margin: only applies with compare: higher or lower"),
    (HEAD + "models:\n" + rule_text(min=0.9, max=0.8),
     "policy.yaml: models[0].max: 0.8 is below min (0.9) (no value could pass both)"),
    (HEAD + "models:\n" + IRIS + rule_text(model="irs"),
     "policy.yaml: models[1].model: 'irs' is not a model of stack 'stack.yaml' "
     "(did you mean 'iris'?)"),
    (HEAD + "models:\n" + rule_text(model="fraud"),
     "policy.yaml: models[0].model: 'fraud' is not a model of stack 'stack.yaml' "
     "(models in the stack: iris, churn, pinned)"),
    (HEAD + "models:\n" + IRIS + rule_text(**{"from": "candidate"}),
     "policy.yaml: models[1].to: iris@production is already promoted by models[0] "
     "(one rule per registered model and target alias)"),
    (HEAD + "models: []\n", "policy.yaml: models: must list at least one entry"),
    (HEAD + "models:\n", "policy.yaml: models: Input should be a valid tuple (got None)"),
    ("version: 1\nstack: stack.yaml\ntarget: k8s\nmodels:\n" + IRIS,
     "policy.yaml: target: Input should be 'compose' or 'swarm' (got 'k8s')"),
    (HEAD + "offline: 'yes'\nmodels:\n" + IRIS,
     "policy.yaml: offline: Input should be a valid boolean (got 'yes')"),
    ("stack: stack.yaml\nmodels:\n" + IRIS,
     "policy.yaml: version: is required but missing (add version:)"),
    ("version: 2\nstack: stack.yaml\nmodels:\n" + IRIS,
     "policy.yaml: version: Input should be 1 (got 2)"),
    (HEAD + "models:\n" + IRIS + "target: swarm\n",
     "policy.yaml: YAML syntax error at line 10, column 1: duplicate key 'target' "
     "(the first one would be silently lost)"),
    (HEAD + "models: [\n", "policy.yaml: YAML syntax error at line 5, column 1:"),
    ("- just a list\n",
     "policy.yaml: must be a YAML mapping, but it is a list "
     "(start from registry/examples/policy.example.yaml)"),
]


@pytest.mark.parametrize(("text", "expected"), INVALID, ids=[e[1][13:60] for e in INVALID])
def test_invalid_policy_names_the_yaml_path(in_tmp: Path, text: str, expected: str) -> None:
    found = problems(write(in_tmp, text))
    assert any(line.startswith(expected) for line in found), found


def test_every_problem_is_reported_at_once(in_tmp: Path) -> None:
    found = problems(write(in_tmp, HEAD + "models:\n" + rule_text(metrik="x", compare="up")))
    assert [line.split(": ")[1] for line in found] == ["models[0].compare", "models[0].metrik"]


def test_missing_policy_and_missing_stack(in_tmp: Path) -> None:
    assert problems("nope.yaml") == ["nope.yaml: file not found (check the path)"]
    path = write(in_tmp, HEAD.replace("stack.yaml", "stacks/gone.yaml") + "models:\n" + IRIS)
    assert problems(path) == [
        f"policy.yaml: stack: stack file '{in_tmp}/stacks/gone.yaml' not found "
        "(a relative path is read from the policy file's folder)"]


def test_invalid_stack_is_reported_with_its_own_problems(in_tmp: Path) -> None:
    (in_tmp / "bad.yaml").write_text(STACK.replace("runtime: fastapi", "runtime: fastapy", 1))
    found = problems(write(in_tmp, HEAD.replace("stack.yaml", "bad.yaml") + "models:\n" + IRIS))
    assert found[0] == (f"policy.yaml: stack: 'bad.yaml' is not a valid compose stack "
                        f"(swarmai validate {in_tmp}/bad.yaml --target compose)")
    assert found[1].startswith(f"{in_tmp}/bad.yaml: models[0].runtime: Input should be")


# --- decisions ----------------------------------------------------------------


def rule(**changes: Any) -> Rule:
    fields: dict[str, Any] = {"model": "iris", "from": "staging", "to": "production",
                              "metric": "accuracy", "compare": "higher"}
    return Rule.model_validate({**fields, **changes})


def described(aliases: dict[str, str], **metrics: float | None) -> Described:
    """``metrics``: version "vN" -> accuracy (None: the version has no accuracy)."""
    versions = {k[1:]: {"version": k[1:], "run_id": "r",
                        "metrics": {} if v is None else {"accuracy": v}}
                for k, v in metrics.items()}
    return Described.model_validate({"name": "iris", "aliases": aliases, "tags": {},
                                     "versions": versions})


BOTH = {"staging": "2", "production": "1"}
DECISIONS = [
    # (rule changes, registry, kind, reason)
    ({}, described(BOTH, v1=0.90, v2=0.95), "promote",
     "accuracy 0.95 of version 2 beats 0.9 of version 1 (production)"),
    ({"min": 0.9}, described(BOTH, v1=0.90, v2=0.95), "promote",
     "accuracy 0.95 of version 2 (>= min 0.9) beats 0.9 of version 1 (production)"),
    ({}, described(BOTH, v1=0.95, v2=0.95), "rejected",
     "accuracy 0.95 of version 2 is not higher than 0.95 of version 1 (production)"),
    ({"margin": 0.01}, described(BOTH, v1=0.94, v2=0.95), "rejected",
     "accuracy 0.95 of version 2 is not higher than 0.94 of version 1 (production) "
     "by more than 0.01"),
    ({"margin": 0.01}, described(BOTH, v1=0.93, v2=0.95), "promote",
     "accuracy 0.95 of version 2 beats 0.93 of version 1 (production) by more than 0.01"),
    ({"compare": "lower", "metric": "accuracy"}, described(BOTH, v1=0.3, v2=0.2), "promote",
     "accuracy 0.2 of version 2 beats 0.3 of version 1 (production)"),
    ({"compare": "lower"}, described(BOTH, v1=0.2, v2=0.3), "rejected",
     "accuracy 0.3 of version 2 is not lower than 0.2 of version 1 (production)"),
    ({"min": 0.96}, described(BOTH, v1=0.90, v2=0.95), "rejected",
     "accuracy 0.95 of version 2 is below min 0.96"),
    ({"min": 0.9, "max": 0.99}, described(BOTH, v1=0.9, v2=0.95), "promote",
     "accuracy 0.95 of version 2 (>= min 0.9 and <= max 0.99) beats 0.9 of version 1"),
    ({"compare": "lower", "max": 0.1}, described(BOTH, v1=0.9, v2=0.5), "rejected",
     "accuracy 0.5 of version 2 is above max 0.1"),
    ({"min": 0.95}, described(BOTH, v1=0.90, v2=0.95), "promote",
     "accuracy 0.95 of version 2 (>= min 0.95) beats"),
    ({"compare": "none", "min": 0.5}, described(BOTH, v1=0.99, v2=0.6), "promote",
     "accuracy 0.6 of version 2 is >= min 0.5"),
    ({"min": 0.5}, described({"staging": "2"}, v2=0.6), "promote",
     "production does not exist yet; accuracy 0.6 of version 2 is >= min 0.5"),
    ({"min": 0.7}, described({"staging": "2"}, v2=0.6), "rejected",
     "accuracy 0.6 of version 2 is below min 0.7"),
    ({}, described({"staging": "2", "production": "2"}, v2=0.1), "up-to-date",
     "production already points at version 2 (staging's version)"),
    ({}, described({"production": "1"}, v1=0.9), "skipped",
     "alias 'staging' does not exist (no candidate)"),
    ({}, described(BOTH, v1=0.9, v2=None), "skipped", "version 2 has no metric 'accuracy'"),
    ({}, described(BOTH, v1=0.9, v2=float("nan")), "skipped",
     "metric 'accuracy' of version 2 is nan"),
    ({}, described(BOTH, v1=None, v2=0.9), "skipped",
     "version 1 has no metric 'accuracy': nothing to compare with"),
    ({"compare": "none", "min": 0.5}, described(BOTH, v1=None, v2=0.9), "promote",
     "accuracy 0.9 of version 2 is >= min 0.5"),
    ({}, described(BOTH, v1=0.9), "skipped",
     "version 2 is not in swarmai's description of iris"),
]


@pytest.mark.parametrize(("changes", "registry", "kind", "reason"), DECISIONS)
def test_decisions(changes: dict[str, Any], registry: Described, kind: str,
                   reason: str) -> None:
    decision = decide(rule(**changes), registry)
    assert decision.kind == kind
    assert decision.reason.startswith(reason), decision.reason


def test_decision_carries_versions_and_values() -> None:
    decision = decide(rule(), described(BOTH, v1=0.9, v2=0.95))
    assert (decision.candidate, decision.current) == ("2", "1")
    assert (decision.candidate_value, decision.current_value) == (0.95, 0.9)


def test_describe_json_with_numeric_versions_is_read_as_text() -> None:
    found = Described.model_validate({"name": "iris", "aliases": {"staging": 2},
                                      "versions": {"2": {"version": 2, "metrics": {}}}})
    assert found.aliases == {"staging": "2"} and found.versions["2"].version == "2"
