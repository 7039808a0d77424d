"""Each run's own folder, ``<save_dir>/<name>/version_N``, claimed atomically before the run starts.

Lightning's loggers pick ``version_N`` by listing the folder and create it later, so two runs started together
can take the same number. Here global rank 0 creates the folder itself with ``mkdir``, which fails when another
run took the number first; the logger is then told the number. Other ranks write nothing of their own (Lightning
broadcasts rank 0's ``log_dir``). On an object store (``s3://``...) folders are only name prefixes: ``mkdir``
cannot fail there, so two runs started at the same moment could share a number; give each its own
``--trainer.logger.init_args.version`` in that case.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from pathlib import Path

from lightning.pytorch import Trainer
from upath import UPath

from lightning_app.errors import RunFolderError
from lightning_app.runs.storage import location

RUNS = "logs"  # where runs go unless --trainer.logger.init_args.save_dir / --trainer.default_root_dir say
VERSION = re.compile(r"version_(\d+)$")


def next_version(parent: UPath) -> int:
    """One more than the highest ``version_N`` under ``parent`` (0 when there is none)."""
    try:
        names = [p.name for p in parent.iterdir()]
    except FileNotFoundError:
        return 0
    numbers = [int(m.group(1)) for m in map(VERSION.match, names) if m]
    return max(numbers, default=-1) + 1


def claim_version(parent: str | UPath) -> UPath:
    """Create and return ``parent/version_N`` for the next free N; a number another run takes is skipped."""
    parent = location(parent)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        number = next_version(parent)
        while True:
            try:
                (parent / f"version_{number}").mkdir()
                return parent / f"version_{number}"
            except FileExistsError:
                number += 1
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise RunFolderError(
            f"cannot create a run folder in {parent} ({reason}): run from a folder you can write to, "
            "or pass --trainer.default_root_dir and --trainer.logger.init_args.save_dir"
        ) from err


STARTED = re.compile(r"(config(\.resume-\d+)?\.yaml|hparams\.yaml|events\.out\.tfevents\..*)")


def drop_if_unused(folder: UPath) -> bool:
    """Remove a run folder its failed run left with nothing but what a start writes (its config, hparams and
    TensorBoard's first events), and the two folders above it when they are left empty. A checkpoint, metrics,
    predictions or any other result keep the folder."""
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else None
    if files is None or any(not STARTED.fullmatch(p.name) for p in files):
        return False
    if isinstance(folder, Path):
        shutil.rmtree(folder, ignore_errors=True)
    else:
        folder.fs.rm(folder.path, recursive=True)
    for parent in (folder.parent, folder.parent.parent):  # the runs' folder and logs/, when left empty
        with contextlib.suppress(OSError):
            if any(parent.iterdir()):
                break
            parent.rmdir()
    return True


def run_dir(trainer: Trainer) -> UPath | None:
    """The folder of this run (the logger's version folder; a local path or a URL), or None without a logger."""
    # the logger's own log_dir: Trainer.log_dir broadcasts from rank 0, which hangs code that runs on rank 0 only
    log_dir = getattr(trainer.logger, "log_dir", None) if trainer.logger is not None else None
    return location(log_dir) if log_dir else None
