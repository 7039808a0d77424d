"""Optional dependencies (``pip install -e '.[export]'``, ``'.[demo]'``): imported where used, with one line that
says what to install when missing."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtra(Exception):
    """An optional package a command needs is not installed."""


def require(module: str, extra: str, command: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtra(f"{command} needs the package {module}: pip install -e '.[{extra}]'") from err
