"""This user's own cache folder (help texts, the key that signs cached features), apart from any run's folder.

``DLWP_CACHE_DIR`` moves it (default ``$XDG_CACHE_HOME/dlwp`` or ``~/.cache/dlwp``). Standard library only: the help
cache reads it before torch is imported.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRET = "signing.key"


def folder() -> Path:
    if os.environ.get("DLWP_CACHE_DIR"):
        return Path(os.environ["DLWP_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dlwp"


def private(info: os.stat_result) -> bool:
    """Owned by this user and writable by no one else."""
    return info.st_uid == os.getuid() and not info.st_mode & 0o022 if hasattr(os, "getuid") else True


def signing_key() -> bytes | None:
    """32 random bytes kept in this user's cache folder (made once, readable by this user alone): what makes a
    signature on a cached file this user's own. None where the folder cannot be written or is not private."""
    where = folder()
    path = where / SECRET
    try:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(handle, "wb") as out:
                out.write(secrets.token_bytes(32))
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(handle, "rb") as source:
            info = os.fstat(source.fileno())
            if not private(info) or info.st_mode & 0o044 or info.st_size != 32:
                return None
            return source.read(32)
    except OSError:
        return None
