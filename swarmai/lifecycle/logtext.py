"""What a failure report shows of a long server log (pure text, no I/O)."""

from __future__ import annotations

import re

# A line that reports a failure, in the log formats of the runtimes swarmai runs:
# Python tracebacks' last lines (``RuntimeError: ...``, as TorchServe relays
# them in MODEL_LOG lines), Java exceptions, and ERROR/FATAL log levels.
_ERROR_LINE = re.compile(
    r"(?:\b[A-Za-z_][\w.]*(?:Error|Exception|Exit)\b:)|\[(?:ERROR|FATAL)\s*\]|"
    r"\b(?:ERROR|FATAL|CRITICAL)\b"
)
# An error line whose message continues on the next line ("RuntimeError: ").
_OPEN_ENDED = re.compile(r"(?:Error|Exception):\s*$")
# Log lines carry timestamps that differ between retries of one failure.
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ][\d:.,]+Z?")


def failure_log_lines(log: str, *, tail: int = 12, errors: int = 6) -> list[str]:
    """What a failure report should show of a long log: its error lines, then its end.

    A server that keeps retrying (TorchServe restarts a worker whose model
    failed to load, with back-off) buries the cause under its retry chatter,
    so the last lines alone rarely hold it.  The last ``errors`` distinct error
    lines (by text, ignoring timestamps) come first, then "...", then the last
    ``tail`` lines.
    """
    lines = [line.rstrip() for line in log.splitlines() if line.strip()]
    cut = max(len(lines) - tail, 0) if tail > 0 else len(lines)
    seen: dict[str, str] = {}
    for index, line in enumerate(lines[:cut]):
        if not _ERROR_LINE.search(line):
            continue
        if _OPEN_ENDED.search(line) and index + 1 < len(lines):
            line = f"{line}\n{lines[index + 1]}"
        key = _TIMESTAMP.sub("", line)
        seen.pop(key, None)  # keep the latest occurrence, in order
        seen[key] = line
    found = [part for entry in list(seen.values())[-errors:] for part in entry.split("\n")]
    return [*found, *(["..."] if found else []), *lines[cut:]]
