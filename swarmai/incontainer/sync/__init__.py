"""The model-sync step beside TF Serving and TorchServe
(``python -m swarmai.incontainer.sync``).

Neither runtime can read ``models:/`` URIs, so this step resolves the model's
URI in MLflow every ``SWARMAI_POLL_SECONDS``, downloads a new version once into
the model cache, and lays it out in the store volume the runtime reads:

* TF Serving: ``<store>/<model>/<version>/saved_model.pb`` (+ ``variables/``);
* TorchServe: ``<store>/<model>.mar`` (+ ``<store>/<model>.version``);

then writes ``<store>/.swarmai-synced``, the JSON record of what the store
holds and the step's healthcheck.  See :func:`sync_once` for one pass.
"""

from swarmai.incontainer.sync.archiver import Archiver, ArchiveSpec, command_archiver
from swarmai.incontainer.sync.config import SyncSettings
from swarmai.incontainer.sync.core import SyncResult, sync_once
from swarmai.incontainer.sync.errors import ArchiveError, LayoutError, SyncError
from swarmai.incontainer.sync.store import MARKER

__all__ = [
    "MARKER",
    "ArchiveError",
    "ArchiveSpec",
    "Archiver",
    "LayoutError",
    "SyncError",
    "SyncResult",
    "SyncSettings",
    "command_archiver",
    "sync_once",
]
