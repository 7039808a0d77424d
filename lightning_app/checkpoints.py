"""Finding checkpoints of earlier runs: ``--ckpt_path best`` and ``--ckpt_path last`` across processes."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from upath import UPath

from lightning_app.quiet import first_line
from lightning_app.storage import is_url, location

ALIASES = ("best", "last")


class CheckpointError(Exception):
    """A checkpoint that cannot be found or used; the message says what to do."""


def run_name(model_class_path: str | None, data_class_path: str | None) -> str:
    """The folder of a model/data pair's runs under ``logs/``: ``MLP-MNIST``, ``TransferModel-CatDog``.

    A missing part is ``*``, a pattern for finding runs: ``MLP-*`` is every MLP run.
    """
    model = str(model_class_path).rsplit(".", 1)[-1] if model_class_path else "*"
    data = str(data_class_path).rsplit(".", 1)[-1].removesuffix("DataModule") if data_class_path else "*"
    return f"{model}-{data}"


def newest_last_checkpoint(save_dir: str | Path, name: str | None) -> Path:
    """The most recently written ``last.ckpt`` under ``save_dir/<name>/version_*/checkpoints``."""
    pattern = f"{name or '*'}/*/checkpoints/last.ckpt"
    found = sorted(Path(save_dir).glob(pattern), key=lambda p: p.stat().st_mtime)
    if not found:
        raise CheckpointError(
            f"no checkpoint found under {Path(save_dir) / (name or '*')}/: run `fit` first or pass --ckpt_path PATH"
        )
    return found[-1]


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint safely (``weights_only=True``): no code in the file can run. A URL is read with fsspec."""
    try:
        if is_url(path):
            with location(path).open("rb") as handle:
                return torch.load(handle, map_location="cpu", weights_only=True)
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as err:
        raise CheckpointError(f"checkpoint {path} does not exist: check --ckpt_path") from err
    except Exception as err:  # noqa: BLE001 - any unpickling failure means: not a usable checkpoint
        raise CheckpointError(
            f"{path} is not a checkpoint this app can load safely ({first_line(err, 200)}): pass a .ckpt written by "
            "`fit`"
        ) from err


def best_of(last: Path) -> Path:
    """The best checkpoint recorded by ModelCheckpoint in ``last``, or ``last`` itself when none is."""
    state = load_checkpoint(last)
    for key, value in state.get("callbacks", {}).items():
        if key.startswith("ModelCheckpoint") and isinstance(value, dict) and value.get("monitor"):
            best = value.get("best_model_path")
            if best and Path(best).is_file():
                return Path(best)
    return last


def resolve(ckpt_path: str, save_dir: str | Path, name: str | None) -> str:
    """Turn ``best``/``last`` into the file of the newest run; check that a given file exists."""
    if ckpt_path in ALIASES:
        last = newest_last_checkpoint(save_dir, name)
        return str(best_of(last) if ckpt_path == "best" else last)
    if not location(ckpt_path).is_file():
        raise CheckpointError(f"checkpoint {ckpt_path} does not exist: pass a .ckpt file, `best` or `last`")
    return ckpt_path


def run_folder_of(ckpt_path: str, state: dict) -> UPath | None:
    """``<save_dir>/<name>/<version>`` of a checkpoint written there by ModelCheckpoint, spelled as it was then."""
    for key, value in state.get("callbacks", {}).items():
        dirpath = value.get("dirpath") if key.startswith("ModelCheckpoint") and isinstance(value, dict) else None
        if dirpath and same_folder(dirpath, location(ckpt_path).parent):
            run = location(dirpath).parent
            if location(dirpath).name == "checkpoints" and (run / "hparams.yaml").exists():
                return run
    return None


def same_folder(a: str | UPath, b: str | UPath) -> bool:
    if is_url(a) or is_url(b):
        return str(location(a)).rstrip("/") == str(location(b)).rstrip("/")
    return os.path.realpath(a) == os.path.realpath(b)
