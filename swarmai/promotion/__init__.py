"""Promotion: move an MLflow alias and roll what serves it (:mod:`.promote`), check the
served version (:mod:`.verify`), decide by policy (:mod:`.policy`), and run a policy
from cron (:mod:`.cron`)."""
