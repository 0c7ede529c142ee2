"""Why a sync pass failed, in words an operator can act on.

Every failure the loop expects (MLflow unreachable, a model missing, artifacts
in a shape the runtime cannot serve, the archiver refusing) is one of these,
so the runner logs one line and retries on the next poll instead of dying.
"""

from __future__ import annotations


class SyncError(Exception):
    """A pass failed; the message says what and, where known, what to do."""


class LayoutError(SyncError):
    """The artifacts hold nothing this runtime can serve."""


class ArchiveError(SyncError):
    """torch-model-archiver failed or is missing."""
