"""Every error a user can fix, and the one way the app quotes a library's error in a line.

The command line prints any of :data:`USER_ERRORS` as one line, ``error: <message>``, and exits with code 2;
each message says what to do. ``datamodules/`` and ``modules/`` raise their own ``DataError`` and ``ModelError``
(they import nothing of the app); every other user-facing error is an :class:`AppError`.
"""

from __future__ import annotations

import argparse
import importlib
import re
from types import ModuleType

from datamodules.errors import DataError, printable  # noqa: F401 - printable: one for the whole app
from modules.errors import ModelError


class AppError(Exception):
    """A problem the user can fix; the message says how."""


class CheckpointError(AppError):
    """A checkpoint that cannot be found or used."""


class RunFolderError(AppError):
    """A run folder that cannot be made."""


class StorageError(AppError):
    """A place to keep runs or read checkpoints that cannot be used (an unknown URL, a filesystem not installed)."""


class ExportError(AppError):
    """An export that cannot be written where it was asked to go."""


class TrainingError(AppError):
    """Training cannot go on (the loss is no longer finite, a checkpoint cannot be written)."""


class SettingError(AppError):
    """A setting of the app's own sections (``--fast_path.*``, ``--nan_check.*``...) that cannot be used."""


class DemoError(AppError):
    """A demo setting that cannot be served (a public address without --public)."""


class MissingExtra(AppError):
    """An optional package a command needs is not installed."""


USER_ERRORS = (AppError, DataError, ModelError, argparse.ArgumentError)


def first_line(exc: BaseException, limit: int = 400) -> str:
    """The first non-blank line of an error's message (its type's name when it has none), at most ``limit``
    characters: what a one-line message quotes of an error from a library."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Caught ") and lines[1].startswith("Original Traceback"):
        # raised again by a DataLoader from its worker process: the worker's own message is the last line
        lines = [re.sub(r"^[\w.]+(Error|Exception): ", "", lines[-1])]
    return (lines[0] if lines else type(exc).__name__)[:limit]


def require(module: str, extra: str, command: str) -> ModuleType:
    """An optional dependency (``pip install -e '.[export]'``), imported where used, or one line that says what
    to install."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtra(f"{command} needs the package {module}: pip install -e '.[{extra}]'") from err
