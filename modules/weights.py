"""Starting a new run from saved weights (the lesson's "save and load models", then train more)."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import nn

from modules.errors import ModelError


def zip_problem(source: str | Path | BinaryIO) -> str | None:
    """What makes a file unlike what ``torch.save`` writes, before torch reads it, or None: torch's reader inflates
    a compressed record whole, so a few megabytes of deflated zeros can take gigabytes. ``torch.save`` writes a zip
    of stored (uncompressed) records, which can be no larger than the file."""
    try:
        position = source.tell() if hasattr(source, "tell") else None
        try:
            with zipfile.ZipFile(source) as archive:
                records = archive.infolist()
        finally:
            if position is not None:
                source.seek(position)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError, struct.error):
        # what Python's zip reader raises for a damaged or crafted file (NotImplementedError: "zip file version 6.4")
        return "not a zip file as torch.save writes"
    if len(records) > 1_000_000:
        return f"{len(records):,} records"
    packed = [r for r in records if r.compress_type != zipfile.ZIP_STORED]
    if packed:
        return f"a compressed record ({packed[0].filename[:60]!r}), which torch.save never writes"
    return None


def safe_load(source: str | Path | BinaryIO, name: str | None = None, legacy_ok: bool = False) -> Any:
    """The one reading of a file a user was given (checkpoint, state_dict, cached features): a zip of stored
    records as ``torch.save`` writes (memory bounded by the file's size: :func:`zip_problem`), read with
    ``weights_only=True``, so tensors and plain values only and no code in the file can run, onto the CPU.
    ``legacy_ok``: also torch's pre-1.6 format, whose sizes no zip bounds, for a file an installed package ships
    (the EfficientNet-Lite0 weights), never for one a user was given."""
    if isinstance(source, (str, Path)) and not Path(source).exists():
        raise FileNotFoundError(source)
    problem = zip_problem(source)
    if problem is not None and not (legacy_ok and problem.startswith("not a zip")):
        raise ModelError(
            f"{name or source} is not a file this app can load safely ({problem}): pass a .ckpt written by `fit` "
            "or a torch.save(state_dict) file"
        )
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # noqa: BLE001 - any unpickling failure means: not a usable file
        detail = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
        raise ModelError(
            f"{name or source} is not a file this app can load safely ({detail[:200]}): pass a .ckpt written by "
            "`fit` or a torch.save(state_dict) file"
        ) from err


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The weights in ``path``: a checkpoint of this app (its ``state_dict``) or a plain ``state_dict`` file.

    Loaded with ``weights_only=True``: the file is data, nothing in it can run.
    """
    if not Path(path).is_file():
        raise ModelError(f"weights file {path} does not exist: pass a .ckpt written by `fit` or a state_dict file")
    state = safe_load(path)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path} holds no state_dict: pass a .ckpt written by `fit` or a torch.save(state_dict) file")
    return state


def state_mismatch(state: dict[str, torch.Tensor], module: nn.Module) -> str | None:
    """Why ``state`` does not fit ``module`` (reshaped, missing or extra tensors), or None when it does."""
    own = module.state_dict()
    reshaped = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    if reshaped:
        return f"shapes differ: {', '.join(reshaped[:2])}"
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    return f"missing {missing[:2]}, unexpected {unexpected[:2]}" if missing or unexpected else None


def load_weights(module: nn.Module, path: str | Path) -> None:
    """Copy the weights in ``path`` into ``module``; every tensor must be there with its shape."""
    state = read_state_dict(path)
    found = state_mismatch(state, module)
    if found:
        raise ModelError(
            f"the weights in {path} do not fit this model ({found}): pass the --model and --data settings they were "
            "trained with"
        )
    module.load_state_dict(state, strict=True)
