"""A quiet terminal: Lightning's informational lines are off by their loggers' level, and known harmless warnings
are filtered at the CLI (``DLWP_DEBUG=1`` shows both again).

Only lines a user would act on stay: the progress bar, results, the summary and real warnings.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings

from lightning_app.errors import printable

DEBUG_ENV = "DLWP_DEBUG"

# warnings that hold nothing to act on for this app: a deprecation inside Lightning itself, and the logging
# interval (every metric here is logged once per epoch); the transfer model's frozen backbone in eval mode
HARMLESS_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\)` is deprecated",
    r"The number of training batches \(\d+\) is smaller than the logging interval",
    r"Found \d+ module\(s\) in eval mode at the start of training",  # a frozen backbone stays in eval mode
    # epoch metrics are torchmetrics, synced across processes by their compute(); epoch seconds are rank 0's
    r"It is recommended to use `self.log\(.*sync_dist=True\)` when logging on epoch level in distributed",
    # a streamed split (LitData) gives each loader worker its own chunks, so its length holds with workers
    r"Your `IterableDataset` has `__len__` defined",
    r"`weights_only` was not set, defaulting to `False`",  # saving a full checkpoint (lr_find's temporary one)
)
# Lightning's informational lines (the accelerator found, the seed set, tips, distributed set-up): each says
# nothing to act on, and all come through these loggers at INFO; their warnings come through ``warnings``
QUIET_LOGGERS = ("lightning.pytorch", "lightning.fabric")


class SurvivesClosedPipe(io.TextIOBase):
    """A standard stream whose reader may go away (``dlwp predict ... | head -1``): from the first broken pipe on,
    writes go nowhere (the descriptor is pointed at the null device, so the exit's flush is quiet too) and the run
    goes on to write its files and end as it would have. A closed terminal never costs a result."""

    def __init__(self, stream) -> None:
        self.stream, self.gone = stream, False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self._reader_left()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._reader_left()

    def _reader_left(self) -> None:
        self.gone = True
        with contextlib.suppress(OSError, ValueError, AttributeError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self.stream.fileno())
            os.close(null)

    def isatty(self) -> bool:
        return not self.gone and self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:
        return self.stream.encoding


def keep_going_without_a_reader() -> None:
    """Wrap stdout and stderr in :class:`SurvivesClosedPipe` (once)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, SurvivesClosedPipe):
            setattr(sys, name, SurvivesClosedPipe(stream))


def install() -> None:
    """Filter the chatter for this process (and, through the environment, none of it is needed in children)."""
    keep_going_without_a_reader()
    if os.environ.get(DEBUG_ENV):
        return
    for message in HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    warnings.formatwarning = one_line_warning
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def one_line_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001 - warnings' signature
    """``warning: <message>``: a user acts on the message; the warning's source line is for developers."""
    return f"warning: {printable(str(message).strip())}\n"


def evaluating() -> None:
    """validate/test/predict from a checkpoint: where its ModelCheckpoint states were written does not matter."""
    if not os.environ.get(DEBUG_ENV):
        warnings.filterwarnings("ignore", message=r"The dirpath has changed from .* won't be reloaded")


def resuming() -> None:
    """fit --ckpt_path: the run's checkpoint folder is expected to hold its earlier checkpoints."""
    if not os.environ.get(DEBUG_ENV):
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
