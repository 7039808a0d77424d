"""Where runs are kept: a local folder, or any fsspec URL (``file://``, ``memory://``, ``s3://``, ``gs://``...).

Lightning's loggers, ModelCheckpoint and config saving already write through fsspec; the app's own writers (run
folders, checkpoints, metrics files, cached features) take their paths from here as universal_pathlib's
``UPath``: a local path stays a ``pathlib.Path``, a URL gets pathlib's methods on its filesystem. Files are
replaced whole or not at all by the one :func:`replace_file`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import fsspec
from upath import UPath

from lightning_app.errors import StorageError, first_line

# filesystems whose rename replaces a file in one step (the local disk, fsspec's ``file://``)
ATOMIC_RENAME = frozenset({"", "file", "local"})


def location(path: str | os.PathLike) -> UPath:
    """``path`` as a UPath: a ``pathlib.Path`` for a local path, a filesystem path for a URL. A URL whose
    filesystem fsspec does not know, or whose package is not installed, is a ``StorageError`` in one line."""
    if isinstance(path, UPath):
        return path
    try:
        where = UPath(path)
        if not isinstance(where, Path):
            fsspec.get_filesystem_class(where.protocol)  # imports its package (s3fs, gcsfs...) or says which
    except ImportError as err:
        raise StorageError(
            f"{path} needs a package not installed ({first_line(err, 150)}): install it, or use a local folder"
        ) from None
    except ValueError as err:
        raise StorageError(
            f"{path} is not a folder or a URL this app can use ({first_line(err, 100)}): pass a local folder, or a "
            "URL of a filesystem fsspec knows (file://, s3://, gs://, memory://, ...)"
        ) from None
    return where


def local_path(path: str | os.PathLike) -> Path | None:
    """The local file system path of ``path`` (``file://`` URLs included), or None for another filesystem."""
    where = location(path)
    if isinstance(where, Path):
        return where
    return Path(where.path) if where.protocol in ATOMIC_RENAME else None


def is_url(path: str | os.PathLike) -> bool:
    return not isinstance(location(path), Path)


def replace_file(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Replace the file at ``path`` with what ``write`` puts into a binary file, whole or not at all.

    On a local disk (and ``file://``) ``write`` fills a temporary file beside it, which is synced and renamed into
    place; a temporary file a killed process left is removed by the next replace. Elsewhere (object stores,
    ``memory://``) there is no rename that replaces a file in one step: the content is made in memory first,
    then written as one object, which a store publishes only when its upload completes. Either way a reader sees
    the previous file or the new one, and a failure before the end leaves the previous one.
    """
    local = local_path(path)
    if local is None:
        buffer = io.BytesIO()
        write(buffer)  # whole before the target is opened: a failure here writes nothing
        target = location(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as handle:
            handle.write(buffer.getbuffer())
        return
    local.parent.mkdir(parents=True, exist_ok=True)
    tmp = local.with_name(f".{local.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, local)
        for stale in local.parent.glob(f".{local.name}.*.tmp"):  # left by a process killed while writing
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_csv(path: str | os.PathLike, header: list[str], rows) -> None:
    """Replace the file at ``path`` with a CSV of ``header`` and ``rows``, whole or not at all."""
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    write_text(path, text.getvalue())


def write_text(path: str | os.PathLike, text: str) -> None:
    """Replace the file at ``path`` with ``text`` (UTF-8), whole or not at all (see :func:`replace_file`)."""
    replace_file(path, lambda handle: handle.write(text.encode()))
