"""The Trainer's checkpoint plugin: checkpoints written whole or not at all, and read as data."""

from __future__ import annotations

import re
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lightning_app.errors import TrainingError
from lightning_app.runs.storage import location, replace_file


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint whole or not at all, and reads every checkpoint as data.

    Writing is ``storage.replace_file``: on a local disk a synced temporary file renamed into place, so a run killed
    while saving leaves the previous ``last.ckpt`` whole (and the next save removes the killed run's temporary
    file); on an object store one object, serialised in memory first, which the store publishes only once its
    upload completes, so a reader sees the previous checkpoint or the new one, never part of one.
    """

    def load_checkpoint(self, path, *args: Any, weights_only: bool | None = None, **kwargs: Any) -> dict:
        """Every checkpoint Lightning loads here (resume, ``test --ckpt_path``, the learning-rate finder's
        temporary one) is read with ``weights_only=True``: tensors and plain values, never code."""
        return super().load_checkpoint(path, *args, weights_only=True, **kwargs)

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        try:
            replace_file(path, lambda handle: torch.save(checkpoint, handle))
        except (OSError, RuntimeError) as err:  # a full disk, a read-only or vanished folder, a refusing store
            # torch's zip writer reports a failed write (a full disk, a file size limit) as a RuntimeError
            # ("unexpected pos", "file write failed"); any other RuntimeError is not about the disk
            if isinstance(err, RuntimeError) and not re.search(
                r"unexpected pos|write failed|PytorchStreamWriter", str(err)
            ):
                raise
            kept = " (the previous one is kept whole)" if location(path).exists() else ""
            reason = err.strerror if isinstance(err, OSError) and err.strerror else "the disk refused the write"
            raise TrainingError(
                f"could not write the checkpoint {path} ({reason}){kept}: free some space or "
                "make the folder writable, then go on with `fit --ckpt_path last`"
            ) from err
