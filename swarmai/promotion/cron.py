"""One run of a promotion policy: lock, describe, decide, promote, audit.

``scripts/promote_models.py`` is the entry point; this module does the work.
It drives the ``swarmai`` CLI as a subprocess (``models describe`` to read the
registry, ``promote`` to move an alias and roll the serving services), so a
run sees and does exactly what a person at a terminal would.

Every run writes one JSON line per policy rule to the audit log, whatever
happens to that rule, including when another run holds the lock.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from swarmai import modeluri
from swarmai.errors import Busy, OperationError, SpecError, SwarmaiError
from swarmai.files import open_no_follow
from swarmai.promotion.locking import (
    describe_holder,
    exclusive,
    holder_age_s,
    open_lock,
    this_process,
)
from swarmai.promotion.policy import Described, LoadedPolicy, Rule, decide, load_policy

EXIT_OK = 0  # everything promoted, up to date, rejected or skipped; or locked out
EXIT_FAILED = 1  # at least one promotion failed (swarmai rolled it back)
EXIT_USAGE = 2  # invalid policy or command line; nothing was done
EXIT_REGISTRY = 3  # the registry could not be read for at least one model
EXIT_STUCK = 4  # locked out by a run older than --stuck-after: it may hang
EXIT_BUSY = Busy.exit_code  # what swarmai promote exits with when the stack's lock is held

DEFAULT_SWARMAI = (sys.executable, "-c", "from swarmai.cli import main; main()")
DESCRIBE_TIMEOUT_S = 300


@dataclass(frozen=True)
class CallResult:
    """What one ``swarmai`` subprocess did."""

    code: int
    stdout: str
    stderr: str
    seconds: float

    def message(self) -> str:
        """swarmai's own message: from its stderr's last ``error:`` line on (without the
        prefix), or else the last lines of its stderr."""
        lines = [line for line in self.stderr.strip().splitlines() if line.strip()]
        starts = [i for i, line in enumerate(lines) if line.startswith("error: ")]
        shown = lines[starts[-1]:][:15] if starts else lines[-15:]
        text = "\n".join(shown).removeprefix("error: ")
        return text or f"exited {self.code} without a message"

    def json(self) -> Any:
        """stdout parsed as JSON (the whole of it, or else its last line), or None."""
        text = self.stdout.strip()
        for candidate in (text, text.splitlines()[-1] if text else ""):
            try:
                return json.loads(candidate)
            except ValueError:
                continue
        return None


@dataclass(frozen=True)
class Swarmai:
    """The ``swarmai`` CLI, run for one policy's stack, target and offline flag."""

    command: Sequence[str]
    loaded: LoadedPolicy

    def describe(self, registered_name: str) -> CallResult:
        return self._run(["models", "describe", str(self.loaded.stack_path), registered_name,
                          *self._common()], DESCRIBE_TIMEOUT_S)

    def promote(self, model: str, alias: str, version: str) -> CallResult:
        return self._promote([model, "--to", alias, "--version", version])

    def resume(self, model: str, alias: str) -> CallResult:
        """Finish or undo an interrupted promotion of ``alias``, nothing else."""
        return self._promote([model, "--to", alias, "--resume"])

    def _promote(self, args: list[str]) -> CallResult:
        # No timeout: killing swarmai mid-roll would skip its own rollback.
        state_dir = self.loaded.state_dir
        return self._run(["promote", str(self.loaded.stack_path), *args, *self._common(),
                          *(["--state-dir", str(state_dir)] if state_dir else [])], None)

    def _common(self) -> list[str]:
        policy = self.loaded.policy
        return ["-t", policy.target, *(["--offline"] if policy.offline else []),
                "--output", "json"]

    def _run(self, args: list[str], timeout: float | None) -> CallResult:
        argv = [*self.command, *args]
        started = time.monotonic()
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                  check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return CallResult(124, "", f"timed out after {timeout:g} s: {' '.join(argv)}",
                              time.monotonic() - started)
        except OSError as error:
            return CallResult(127, "", f"cannot run {argv[0]}: {error}",
                              time.monotonic() - started)
        return CallResult(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


class AuditLog:
    """Appends JSON lines: the file is opened with O_APPEND and each line is one write,
    so lines of concurrent runs never interleave; each is on disk before the run goes
    on (a crash right after must not lose what the run said it would do). A symbolic
    link in the file's place is refused, not followed."""

    def __init__(self, path: Path, base: Mapping[str, Any]) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OperationError(f"cannot create the folder of the audit log {path}: "
                                 f"{error.strerror or error}") from None
        self.path = path
        self._base = dict(base)
        self._fd = open_no_follow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                                  what="audit log")

    def write(self, record: Mapping[str, Any]) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        line = json.dumps({"time": stamp, **self._base, **record}, sort_keys=False) + "\n"
        data = line.encode("utf-8")
        if os.write(self._fd, data) != len(data):
            raise OSError(f"short write to audit log {self.path}")
        os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)


@dataclass(frozen=True)
class Outcome:
    """The final word on one rule in one run: the audit line's fields and an exit code."""

    decision: str
    reason: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    code: int = EXIT_OK


@dataclass
class Run:
    loaded: LoadedPolicy
    swarmai: Swarmai
    audit: AuditLog
    dry_run: bool
    say: Callable[[str, bool], None]  # (line, is_problem)
    described: dict[str, Described | Outcome] = field(default_factory=dict)

    def rules(self) -> int:
        """Apply every rule in order; the exit code of the worst outcome."""
        codes = [self._record(rule, self._apply(rule)) for rule in self.loaded.policy.models]
        return worst(codes)

    def locked_out(self, holder: Mapping[str, Any], stuck_after: float) -> int:
        who = describe_holder(holder)
        age = holder_age_s(holder)
        stuck = age is not None and age > stuck_after
        reason = f"another run ({who}) holds {self.loaded.lock_file}"
        for rule in self.loaded.policy.models:
            self._record(rule, Outcome("locked", reason))
        if stuck:
            self.say(f"another run ({who}) has held {self.loaded.lock_file} for {age:.0f} s, "
                     f"more than --stuck-after {stuck_after:g} s: is it hanging?", True)
            return EXIT_STUCK
        self.say(f"another run ({who}) is in progress; nothing done", False)
        return EXIT_OK

    def _apply(self, rule: Rule) -> Outcome:
        registered = self.loaded.registered[rule.model]
        found = self._describe(registered)
        if isinstance(found, Outcome):
            return found
        if modeluri.pending_tag(rule.target) in found.tags and not self.dry_run:
            # An earlier promotion died midway: settle it; the rule's next run decides.
            self.described.pop(registered, None)
            self._started(rule, "resuming an interrupted promotion", {})
            return _resumed(self.swarmai.resume(rule.model, rule.target))
        decision = decide(rule, found)
        numbers = {"candidate": decision.candidate, "current": decision.current,
                   "candidate_value": decision.candidate_value,
                   "current_value": decision.current_value}
        if decision.kind != "promote":
            return Outcome(decision.kind, decision.reason, numbers)
        if self.dry_run:
            return Outcome("would-promote", decision.reason, numbers)
        assert decision.candidate is not None
        self.described.pop(registered, None)  # the alias moves: describe afresh next time
        self._started(rule, decision.reason, numbers)
        done = self.swarmai.promote(rule.model, rule.target, decision.candidate)
        return _promoted(decision.reason, numbers, done)

    def _started(self, rule: Rule, reason: str, numbers: Mapping[str, Any]) -> None:
        """An audit line before the run changes anything: a run killed from here on
        still leaves a trace of what it was doing."""
        self._audit(rule, Outcome("started", reason, numbers))

    def _describe(self, registered: str) -> Described | Outcome:
        if registered not in self.described:
            self.described[registered] = _read_described(self.swarmai.describe(registered))
        return self.described[registered]

    def _record(self, rule: Rule, outcome: Outcome) -> int:
        self._audit(rule, outcome)
        self.say(f"{rule.model}: {outcome.decision}: {outcome.reason}",
                 outcome.code != EXIT_OK)
        return outcome.code

    def _audit(self, rule: Rule, outcome: Outcome) -> None:
        self.audit.write({
            "model": rule.model, "registered_name": self.loaded.registered[rule.model],
            "from": rule.source, "to": rule.target, "metric": rule.metric,
            "decision": outcome.decision, "reason": outcome.reason,
            **dict.fromkeys(AUDIT_RESULT_KEYS), **outcome.fields,
        })


AUDIT_RESULT_KEYS = ("candidate", "current", "candidate_value", "current_value", "changed",
                     "previous", "seconds", "exit_code", "error")


def _read_described(result: CallResult) -> Described | Outcome:
    error_fields = {"exit_code": result.code}
    if result.code != 0:
        message = result.message()
        return Outcome("error", f"the registry could not be read: {message}",
                       {**error_fields, "error": message}, EXIT_REGISTRY)
    try:
        return Described.model_validate(result.json())
    except ValidationError as error:
        message = f"swarmai models describe printed unexpected JSON: {error.errors()[0]['msg']}"
        return Outcome("error", message, {**error_fields, "error": message}, EXIT_REGISTRY)


def _promoted(reason: str, numbers: Mapping[str, Any], done: CallResult) -> Outcome:
    report = done.json()
    report = report if isinstance(report, dict) else {}
    fields = {**numbers, "exit_code": done.code,
              "seconds": report.get("seconds", round(done.seconds, 3))}
    if done.code == EXIT_BUSY:
        return Outcome("locked", done.message(), fields)
    if done.code != 0:
        message = done.message()
        return Outcome("failed", f"swarmai promote failed: {message}",
                       {**fields, "error": message}, EXIT_FAILED)
    fields.update(changed=report.get("changed"), previous=report.get("previous"))
    return Outcome("promoted", reason, fields)


def _resumed(done: CallResult) -> Outcome:
    """The outcome of ``swarmai promote --resume``: what it did to the interrupted one."""
    report = done.json()
    report = report if isinstance(report, dict) else {}
    fields = {"exit_code": done.code, "seconds": report.get("seconds", round(done.seconds, 3)),
              "current": report.get("version")}
    if done.code == EXIT_BUSY:
        return Outcome("locked", done.message(), fields)
    if done.code != 0:
        message = done.message()
        return Outcome("failed", f"settling an interrupted promotion failed: {message}",
                       {**fields, "error": message}, EXIT_FAILED)
    how = report.get("resumed") or "already settled"
    return Outcome("resumed", f"an interrupted promotion was {how}; @{report.get('alias')} "
                   f"serves version {report.get('version')}", {**fields, "changed": True})


def worst(codes: Sequence[int]) -> int:
    """A failed promotion outranks an unreadable registry, which outranks success."""
    for code in (EXIT_FAILED, EXIT_REGISTRY):
        if code in codes:
            return code
    return EXIT_OK


def check_command(command: Sequence[str]) -> str:
    """Why ``command`` cannot be run ('' when it can): its program must be executable."""
    if not command:
        return "empty command"
    program = command[0]
    found = shutil.which(program) if os.sep not in program else program
    if found is None or not os.access(found, os.X_OK) or os.path.isdir(found):
        return f"{program!r} is not an executable program"
    return ""


def promote_by_policy(policy_path: str, *, swarmai: Sequence[str] = DEFAULT_SWARMAI,
                      dry_run: bool = False, stuck_after: float = 3600,
                      out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Run the policy once; the process exit code (see the module's EXIT_* constants)."""
    def say(line: str, problem: bool) -> None:
        print(line, file=err if problem else out, flush=True)

    try:
        loaded = load_policy(policy_path)
    except SpecError as error:
        say(str(error), True)
        return EXIT_USAGE
    problem = check_command(swarmai)
    if problem:
        say(f"error: --swarmai: {problem}", True)
        return EXIT_USAGE
    for warning in loaded.warnings:
        say(f"warning: {warning}", True)
    run_id = uuid.uuid4().hex
    me = this_process(run_id=run_id)
    base = {"run_id": run_id, "host": me["host"], "policy": str(loaded.path),
            "stack": str(loaded.stack_path), "target": loaded.policy.target, "dry_run": dry_run}
    try:
        audit = AuditLog(loaded.audit_log, base)
    except SwarmaiError as error:
        say(f"error: {error}", True)
        return EXIT_USAGE
    try:
        run = Run(loaded, Swarmai(tuple(swarmai), loaded), audit, dry_run, say)
        return _locked_run(run, me, stuck_after)
    finally:
        audit.close()


def _locked_run(run: Run, me: Mapping[str, Any], stuck_after: float) -> int:
    if run.dry_run:  # decides and audits, changes nothing: needs no lock
        return run.rules()
    try:
        fd = open_lock(run.loaded.lock_file)
    except SwarmaiError as error:
        run.say(f"error: {error}", True)
        return EXIT_USAGE
    with exclusive(fd, me) as lock:
        if not lock.acquired:
            return run.locked_out(lock.holder, stuck_after)
        return run.rules()
