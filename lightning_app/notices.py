"""The app's own one-line notices (``fast path off: ...``, the feature pass's progress), on rank 0.

They go through the ``lightning_app`` logger at INFO, set up as Lightning sets up its own (a stderr handler unless
the root logger has one, then propagated to it), so the command line quiets Lightning's INFO lines by their
logger's level and these stay.
"""

from __future__ import annotations

import logging

from lightning.pytorch.utilities import rank_zero_only

log = logging.getLogger("lightning_app")
log.setLevel(logging.INFO)
if not logging.getLogger().hasHandlers() and not log.handlers:
    log.addHandler(logging.StreamHandler())
    log.propagate = False


@rank_zero_only
def notice(message: str) -> None:
    log.info(message)
