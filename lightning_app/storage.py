"""Where runs are kept: a local folder, or any fsspec URL (``file://``, ``memory://``, ``s3://``, ``gs://``...).

Lightning's loggers, ModelCheckpoint and config saving already write through fsspec; the app's own writers (run
folders, checkpoints, metrics files) take their paths from here as universal_pathlib's ``UPath``: a local path
stays a ``pathlib.Path``, a URL gets pathlib's methods on its filesystem.
"""

from __future__ import annotations

import os
from pathlib import Path

from upath import UPath

# filesystems whose rename replaces a file in one step (the local disk, fsspec's ``file://``)
ATOMIC_RENAME = frozenset({"", "file", "local"})


def location(path: str | os.PathLike) -> UPath:
    """``path`` as a UPath: a ``pathlib.Path`` for a local path, a filesystem path for a URL."""
    return path if isinstance(path, UPath) else UPath(path)


def local_path(path: str | os.PathLike) -> Path | None:
    """The local file system path of ``path`` (``file://`` URLs included), or None for another filesystem."""
    where = location(path)
    if isinstance(where, Path):
        return where
    return Path(where.path) if where.protocol in ATOMIC_RENAME else None


def is_url(path: str | os.PathLike) -> bool:
    return not isinstance(location(path), Path)


def write_text(path: UPath, text: str) -> None:
    """Replace the file at ``path`` with ``text`` in one step: a temporary file renamed into place on a local
    disk; one object on other filesystems (a store publishes it once written), so no reader sees part of it."""
    local = local_path(path)
    if local is None:
        path.write_text(text)
        return
    tmp = local.with_name(f".{local.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(local)
