"""``python -m swarmai.incontainer.sync [--once]``: the model-sync step's entry point."""

from __future__ import annotations

import argparse
import logging
import sys

from swarmai.incontainer.server.config import ConfigError
from swarmai.incontainer.sync.config import SyncSettings
from swarmai.incontainer.sync.runner import mlflow_dependencies, run


def main(argv: list[str] | None = None) -> int:
    """Read the environment, sync, and return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m swarmai.incontainer.sync",
                                     description=__doc__)
    parser.add_argument("--once", action="store_true",
                        help="do one pass and exit: 0 when the store is in sync, 1 if not")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = SyncSettings.from_env()
    except ConfigError as error:
        logging.getLogger("swarmai.incontainer.sync").error("%s", error)
        return error.exit_code
    logging.getLogger().setLevel(settings.log_level.upper())
    return run(settings, mlflow_dependencies(settings), once=args.once)


if __name__ == "__main__":
    sys.exit(main())
