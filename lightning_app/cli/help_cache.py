"""``--help`` and ``--print_config`` from a cache: they compute nothing, yet LightningCLI builds them only after
torch and Lightning are imported (seconds; Lightning also imports torchmetrics, torchvision and torch._dynamo).
The first such command prints and stores its output; the same command again prints it before torch is imported.

Neither LightningCLI nor jsonargparse keeps such a cache, so it lives here, read by ``__main__`` with the standard
library alone. The key is everything the output can depend on: the command line and the program's name, the
folder it runs in, the terminal's width, the environment's ``PL_``/``JSONARGPARSE_``/``DLWP_`` variables, the
app's own files (by content), the installed distributions (names, versions and when each was installed) and the
interpreter. A command that names a file (a config of one's own, a checkpoint) or a class outside the app's
packages is never cached, nor one run where jsonargparse reads configs from the environment
(``JSONARGPARSE_DEFAULT_ENV``): what it reads is not in the key. An entry is read only from a folder and a
regular file that the user owns and no one else can write, only up to ``LIMIT`` bytes, and only when it is plain
text without control characters; anything else is a miss.

``DLWP_CACHE_DIR`` moves the cache (default ``$XDG_CACHE_HOME/dlwp`` or ``~/.cache/dlwp``); ``DLWP_HELP_CACHE=0``
turns it off.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lightning_app.runs import user_cache

HELP_FLAGS = ("-h", "--help", "--print_config")
OWN_PACKAGES = ("lightning_app", "modules", "datamodules")
KNOWN_ROOTS = (*OWN_PACKAGES, "lightning", "torch", "torchvision", "torchmetrics")
ENV_PREFIXES = ("PL_", "JSONARGPARSE", "DLWP_", "COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")
LIMIT = 4 * 2**20  # a help text is about 50 kB: a bigger entry is not one this module wrote
KEEP = 64  # entries; the oldest go first
CLASS_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


def folder() -> Path:
    return user_cache.folder() / "help"


def cacheable(argv: list[str]) -> bool:
    """A help or print_config command that reads nothing outside the key."""
    if os.environ.get("DLWP_HELP_CACHE", "1") == "0":
        return False
    if os.environ.get("JSONARGPARSE_DEFAULT_ENV", "").lower() not in ("", "0", "false", "no"):
        return False  # PL_FIT__CONFIG=user.yaml and the like: a config the key cannot see
    if not any(a in HELP_FLAGS or a.startswith("--print_config=") or a.endswith(".help") for a in argv):
        return False
    for token in argv:
        value = token.partition("=")[2] if token.startswith("-") and "=" in token else token
        if token.startswith("--ckpt_path") or (value and not value.startswith("-") and _names_outside(value)):
            return False
    return True


def _names_outside(value: str) -> bool:
    if CLASS_PATH.fullmatch(value) and value.split(".")[0] not in KNOWN_ROOTS:
        return not (Path.cwd() / value).is_dir()  # "my_models.Net" is a class; "data.v2" can be a folder
    try:
        return Path(value).is_file()
    except (OSError, ValueError):
        return True


def _own_files() -> Iterator[str]:
    root = Path(__file__).resolve().parents[2]
    for package in OWN_PACKAGES:
        for path in sorted((root / package).rglob("*")):
            if path.suffix in (".py", ".yaml", ".yml") and "__pycache__" not in path.parts:
                yield f"{path.relative_to(root)}:{hashlib.sha256(path.read_bytes()).hexdigest()}"


def _installed() -> Iterator[str]:
    for entry in map(os.path.abspath, sys.path):  # "" (python -c) and the folder (python -m) alike
        try:
            names = sorted(os.listdir(entry))
        except OSError:
            continue
        yield entry
        for name in names:  # a package reinstalled at the same version has a new dist-info
            if name.endswith((".dist-info", ".egg-info", ".pth")):
                with contextlib.suppress(OSError):
                    yield f"{name}:{os.stat(os.path.join(entry, name)).st_mtime_ns}"


def key(argv: list[str]) -> str:
    digest = hashlib.sha256()
    width = shutil.get_terminal_size().columns
    env = sorted((k, v) for k, v in os.environ.items() if k.startswith(ENV_PREFIXES))
    program = Path(sys.argv[0]).name  # usage lines read dlwp or python -m lightning_app
    for part in (sys.executable, sys.version, os.getcwd(), width, program, argv, env, *_own_files(), *_installed()):
        digest.update(repr(part).encode() + b"\0")
    return digest.hexdigest()


def plain(text: str) -> bool:
    """Text a terminal shows as it is: no escape sequences or other control characters."""
    return not any(ord(c) < 32 and c not in "\n\t" or 127 <= ord(c) < 160 for c in text)


def lookup(argv: list[str]) -> str | None:
    """The stored output of this very command, or None."""
    where = folder()
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        if not user_cache.private(os.stat(where)):
            return None
        handle = os.open(where / f"{key(argv)}.txt", flags)  # a FIFO or device does not block the open
        with open(handle, encoding="utf-8") as entry:
            info = os.fstat(entry.fileno())
            if not stat.S_ISREG(info.st_mode) or not user_cache.private(info) or info.st_size > LIMIT:
                return None
            text = entry.read(LIMIT + 1)
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return text if 0 < len(text) <= LIMIT and plain(text) else None


def store(argv: list[str], text: str) -> None:
    """Keep ``text`` for this command; a cache that cannot be written is skipped without a word."""
    out = None
    try:
        where = folder()
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not user_cache.private(where.stat()):
            return  # a folder others can write to: nothing kept, nothing read
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=where, suffix=".tmp", delete=False) as out:
            out.write(text)
        os.replace(out.name, where / f"{key(argv)}.txt")
        out = None
        for old in sorted(where.glob("*.txt"), key=lambda p: p.stat().st_mtime, reverse=True)[KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:
        if out is not None:  # a full disk: no half-written entry left behind
            with contextlib.suppress(OSError):
                os.unlink(out.name)


class _Tee(io.TextIOBase):
    """The terminal's stdout, and a copy."""

    def __init__(self, stream) -> None:
        self.stream, self.copy = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:
        return self.stream.encoding


@contextmanager
def recording(argv: list[str]) -> Iterator[None]:
    """Run a command; if it was a cacheable one that ended well and said nothing on stderr, keep its stdout."""
    if not cacheable(argv):
        yield
        return
    out, err = _Tee(sys.stdout), _Tee(sys.stderr)
    sys.stdout, sys.stderr = out, err
    ok = False
    try:
        yield
        ok = True
    except SystemExit as stop:
        ok = stop.code in (None, 0)
        raise
    finally:
        sys.stdout, sys.stderr = out.stream, err.stream
        if ok and not err.copy.getvalue() and out.copy.getvalue():
            store(argv, out.copy.getvalue())
