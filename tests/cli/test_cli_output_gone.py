"""A command whose reader went away (the cron run that started ``swarmai promote`` was
killed) finishes its work: progress lines go nowhere instead of raising."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHILD = """
import sys, time
from pathlib import Path
from swarmai.cli.common import progress, say
time.sleep(0.5)  # the reader is gone by now
for n in range(3):
    progress(f"step {n}")
say("the report")
Path(sys.argv[1]).write_text("finished")
"""


def test_progress_to_a_closed_pipe_does_not_stop_the_command(tmp_path: Path) -> None:
    done = tmp_path / "done"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(done)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()
    child.stderr.close()  # as if the parent had been killed
    assert child.wait(timeout=60) == 0
    assert done.read_text() == "finished"
