#!/usr/bin/env python3
"""Promote MLflow model versions by policy: the script cron or a systemd timer runs.

Run it with the Python that has swarmai installed (the project's .venv); the
work is done by swarmai.promotion.cron, the policy format is in
swarmai.promotion.policy and docs/cron.md.
"""

from __future__ import annotations

import argparse
import shlex
import sys

DESCRIPTION = """\
Apply a promotion policy once: for each rule, read the registry with
`swarmai models describe`, decide whether the version of the `from` alias
should become the version of the `to` alias (by an MLflow run metric: a
min/max threshold and/or beating the current `to` version), and promote
the qualifying ones with `swarmai promote` (which rolls the serving services
and rolls back on failure). Every rule gets one JSON line in the audit log per
run. A lock (flock) makes overlapping runs safe: a run that finds it held
promotes nothing, audits decision "locked" and exits 0. Re-running is
idempotent: a `to` alias already at the candidate is "up-to-date".
"""

EPILOG = """\
decisions (audit log "decision"):
  promoted                  swarmai promote moved the alias and rolled the services
  failed                    swarmai promote exited non-zero (exit 1: it rolled back)
  would-promote             --dry-run: the candidate qualifies; nothing changed
  up-to-date                the to alias already points at the candidate
  rejected                  outside min/max, or does not beat the current version
  skipped                   no candidate alias, or the metric is missing / not finite
  error                     swarmai models describe failed (registry unreadable)
  locked                    another run held the lock; nothing was done

exit codes:
  0  every rule promoted, up to date, rejected or skipped; or locked out by a run
  1  at least one promotion failed (swarmai rolled it back); or the audit log
     could not be written
  2  invalid policy, command line, --swarmai program, audit log or lock file
     path: nothing was done
  3  the registry could not be read for at least one model (and no promotion failed)
  4  locked out by a run that has held the lock longer than --stuck-after

examples:
  .venv/bin/python scripts/promote_models.py registry/examples/policy.example.yaml --dry-run
  .venv/bin/python scripts/promote_models.py /etc/swarmai/policy.yaml

  crontab line (every 10 minutes; stdout to a log, stderr mailed by cron):
  {crontab}

See scripts/cron/ for a crontab file, a systemd service and timer, and an example policy.
""".format(crontab="*/10 * * * * cd /opt/swarmai && .venv/bin/python scripts/promote_models.py "
                   "/etc/swarmai/policy.yaml >>/var/log/swarmai/promote.log")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="promote_models.py", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("policy", metavar="POLICY", help="the policy file (YAML)")
    parser.add_argument("--dry-run", action="store_true",
                        help="decide and audit (decision would-promote) but never promote; "
                             "takes no lock")
    parser.add_argument("--swarmai", metavar="CMD", default=None,
                        help="the swarmai command to run, split like a shell would "
                             "[default: this Python's swarmai: python -c 'from swarmai.cli "
                             "import main; main()']")
    parser.add_argument("--stuck-after", metavar="SECONDS", type=float, default=3600,
                        help="when locked out by a run older than this, exit 4 instead of 0 "
                             "[default: %(default)g]")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        from swarmai.promotion.cron import DEFAULT_SWARMAI, promote_by_policy
    except ImportError as error:
        print(f"error: swarmai cannot be imported ({error}); run this script with the Python "
              "that has it installed, e.g. .venv/bin/python scripts/promote_models.py",
              file=sys.stderr)
        return 2
    command = shlex.split(args.swarmai) if args.swarmai is not None else list(DEFAULT_SWARMAI)
    try:
        return promote_by_policy(args.policy, swarmai=command, dry_run=args.dry_run,
                                 stuck_after=args.stuck_after)
    except OSError as error:  # the audit log became unwritable mid-run (disk full, ...)
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
