"""Finding checkpoints of earlier runs: ``--ckpt_path best`` and ``--ckpt_path last`` across processes."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from upath import UPath

from lightning_app.errors import CheckpointError
from lightning_app.runs.storage import is_url, location
from modules import ModelError
from modules.weights import safe_load

ALIASES = ("best", "last")


def run_name(model_class_path: str | None, data_class_path: str | None, folder: str | None = None) -> str:
    """The folder of a model/data pair's runs under ``logs/``: ``MLP-MNIST``, ``TransferModel-CatDog-flowers``
    (a photo folder's runs carry the folder's name, ``folder``, so runs on different photos stay apart).

    A missing part is ``*``, a pattern for finding runs: ``MLP-*`` is every MLP run.
    """
    model = str(model_class_path).rsplit(".", 1)[-1] if model_class_path else "*"
    data = str(data_class_path).rsplit(".", 1)[-1].removesuffix("DataModule") if data_class_path else "*"
    name = f"{model}-{data}"
    if folder:
        path = Path(str(folder).rstrip("/"))
        if path.name in ("train", "val", "test") and path.parent.name:
            path = path.parent  # cats_dogs/train is the cats_dogs photos
        label = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.name).strip("._")[:40]
        name += f"-{label}" if label else ""
    return name


def newest_last_checkpoint(save_dir: str | Path, name: str | None) -> Path:
    """The most recently written ``last.ckpt`` under ``save_dir/<name>*/version_*/checkpoints`` (a photo
    folder's runs add its name to the pair's)."""
    stem = name or "*"
    pattern = f"{stem if stem.endswith('*') else stem + '*'}/*/checkpoints/last.ckpt"
    found = sorted(Path(save_dir).glob(pattern), key=lambda p: p.stat().st_mtime)
    if not found:
        raise CheckpointError(
            f"no checkpoint found under {Path(save_dir) / (name or '*')}/: run `fit` first or pass --ckpt_path PATH"
        )
    return found[-1]


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint read as data (``modules.weights.safe_load``); a URL is read with fsspec."""
    try:
        if is_url(path):
            with location(path).open("rb") as handle:
                return safe_load(handle, str(path))
        return safe_load(path)
    except FileNotFoundError as err:
        raise CheckpointError(f"checkpoint {path} does not exist: check --ckpt_path") from err
    except ModelError as err:
        raise CheckpointError(str(err)) from err


def recorded_best(last: Path) -> Path | None:
    """The best checkpoint that the run's ``metrics.json`` names, when the file was written after ``last`` (the
    MetricsJSON callback rewrites it after each epoch's checkpoints): no checkpoint is read to find it."""
    metrics = last.parent.parent / "metrics.json"
    try:
        if metrics.stat().st_mtime < last.stat().st_mtime or metrics.stat().st_size > 1_000_000:
            return None
        best = json.loads(metrics.read_text()).get("best_model_path")
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(best, str) and Path(best).is_file() and same_folder(Path(best).parent, last.parent):
        return Path(best)
    return None


def best_of(last: Path) -> Path:
    """The best checkpoint of ``last``'s run: as ``metrics.json`` records it, else as ModelCheckpoint recorded it
    in ``last``, else ``last`` itself."""
    found = recorded_best(last)
    if found is not None:
        return found
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


def monitoring_checkpoint(trainer: Trainer) -> ModelCheckpoint | None:
    """The ModelCheckpoint that keeps the best model by a monitored metric (not the one keeping ``last``)."""
    return next((cb for cb in trainer.checkpoint_callbacks if isinstance(cb, ModelCheckpoint) and cb.monitor), None)
