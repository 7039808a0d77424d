"""The one line that says another installed distribution also provides a top-level ``lightning_app``.

PyPI still serves ``lightning-app`` (the old Lightning Apps framework), whose ``lightning_app`` package has its
own ``__main__``: installed beside this project, whichever comes first on ``sys.path`` is imported, so outside
the repository's root ``python -m lightning_app`` can run the other one without a word. The check lives here,
in a package that stays this project's when ``lightning_app`` does not, and runs on ``import datamodules``
(every run of the app, and a script's or notebook's import); the test suite checks it too. It reads
installed metadata only (a few milliseconds) and imports nothing.
"""

from __future__ import annotations

import importlib.util
import warnings
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

OTHERS = ("lightning-app",)  # distributions known to install a top-level lightning_app
OURS = Path(__file__).resolve().parents[1] / "lightning_app"


class NameClashWarning(UserWarning):
    pass


def name_clash() -> str | None:
    """The line to show, or None when no other distribution provides ``lightning_app``."""
    for name in OTHERS:
        try:
            other = distribution(name)
        except PackageNotFoundError:
            continue
        spec = importlib.util.find_spec("lightning_app")  # locates it, imports nothing
        found = Path(spec.origin).resolve().parent if spec is not None and spec.origin else None
        where = "runs it, not this app" if found != OURS else "may run it, not this app, from another folder"
        return (
            f"{other.metadata['Name']} {other.version} is installed and also provides a top-level `lightning_app`: "
            f"`python -m lightning_app` {where}; `pip uninstall {name}` (docs/guide.md#troubleshooting)"
        )
    return None


def warn_on_name_clash() -> None:
    if (line := name_clash()) is not None:
        warnings.warn(line, NameClashWarning, stacklevel=3)
