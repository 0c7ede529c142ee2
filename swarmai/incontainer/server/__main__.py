"""``python -m swarmai.incontainer.server``: the container entry point of the fastapi runtime."""

from __future__ import annotations

import logging
import sys

from swarmai.incontainer.server.config import ConfigError, Settings
from swarmai.incontainer.server.workers import prepare_metrics


def main() -> int:
    """Read the environment, serve, and return the exit code."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings.from_env()
        logging.getLogger().setLevel(settings.log_level.upper())
        prepare_metrics(settings.workers)  # before prometheus_client is imported
        from swarmai.incontainer.server.runner import serve

        return serve(settings)
    except ConfigError as error:
        logging.getLogger("swarmai.incontainer.server").error("%s", error)
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
