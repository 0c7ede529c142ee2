"""model-sync's image has MLflow's client and the archiver, not the server's numeric
stack (swarmai/images/contexts/model-sync): what the sync step imports must hold."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("numpy", "pandas", "sklearn", "scipy", "uvloop", "starlette")


def test_the_sync_step_imports_none_of_the_servers_numeric_stack() -> None:
    probe = ("import sys, swarmai.incontainer.sync.__main__, swarmai.incontainer.sync.runner; "
             f"print([m for m in {HEAVY!r} if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout
