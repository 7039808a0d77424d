"""What a checkpoint may decide for a run, read as data: its model (class and settings) and its data class.

A checkpoint is a file a user was given. It is loaded with ``weights_only=True`` and the classes it names are
only accepted when they are already loaded (this app's, or ones the user named with ``--model``/``--data``),
so a checkpoint can never make the app import a module. Of its data settings, the ones that say where and how
this machine reads files (``ENVIRONMENT_KEYS``) come from the command line, never from the checkpoint.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from dataclasses import dataclass
from typing import Any

import torch

from lightning_app.errors import CheckpointError, first_line
from lightning_app.runs.checkpoints import load_checkpoint
from lightning_app.runs.saved_settings import check_settings
from modules.weights import state_mismatch

ENVIRONMENT_KEYS = frozenset(
    {"data_dir", "num_workers", "predict_path", "download", "max_pixels", "skip_bad_files", "cache_dir"}
)
LINKED_KEYS = frozenset({"num_classes", "class_names"})  # set from the datamodule, not by the user


def loaded_class(class_path: str, base: type, named: bool = False) -> type | None:
    """The class at ``class_path`` if it subclasses ``base`` and its module is already imported, or imported
    because the user named that very class (``named``); a checkpoint alone never imports anything."""
    module_name, _, name = str(class_path).rpartition(".")
    if named and module_name:
        with contextlib.suppress(ImportError):
            importlib.import_module(module_name)
    found = getattr(sys.modules.get(module_name), name, None)
    return found if isinstance(found, type) and issubclass(found, base) else None


@dataclass
class SavedRun:
    """The parts of a checkpoint a run is configured from."""

    path: str
    state: dict[str, Any]
    model_class: str
    model_settings: dict[str, Any]
    data_class: str | None
    data_settings: dict[str, Any]

    @property
    def epoch(self) -> int:
        return int(self.state.get("epoch", -1))


def read_saved_run(path: str, model_base: type, data_base: type, named: tuple[str | None, ...] = ()) -> SavedRun:
    """The checkpoint at ``path``; ``named``: the ``--model``/``--data`` class paths the user gave."""
    state = load_checkpoint(path)
    if not isinstance(state, dict) or not isinstance(state.get("state_dict"), dict):
        raise CheckpointError(f"{path} holds no model weights: pass a .ckpt written by `fit`")
    model, data = state.get("hyper_parameters") or {}, state.get("datamodule_hyper_parameters") or {}
    if not isinstance(model, dict) or not isinstance(data, dict):
        raise CheckpointError(f"{path} holds settings that are not a table: pass a .ckpt written by `fit`")
    model, data = dict(model), dict(data)
    for settings in (model, data):
        settings.pop("_instantiator", None)
    earlier_normalisation(model, data)
    model_class = model.pop("_class_path", None)
    data_class = data.pop("_class_path", None)
    if model_class is None:
        raise CheckpointError(f"{path} does not say which model made it: pass a .ckpt written by this app's `fit`")
    for flag, class_path, base, settings in (
        ("--model", model_class, model_base, model),
        ("--data", data_class, data_base, data),
    ):
        if class_path is None:
            continue
        cls = loaded_class(class_path, base, class_path in named)
        if cls is None:
            raise CheckpointError(
                f"{path} names the class {str(class_path)[:120]!r}, which this app has not loaded: if you trust it, "
                f"pass {flag} {str(class_path)[:120]} yourself"
            )
        check_settings(path, flag[2:], cls, settings)
        if flag == "--model":
            check_size(path, cls, settings, state["state_dict"])
    return SavedRun(path, state, model_class, model, data_class, data)


def check_size(path: str, cls: type, settings: dict[str, Any], weights: dict[str, Any]) -> None:
    """The model the settings describe, built first on torch's ``meta`` device (no memory), must hold exactly the
    checkpoint's tensors, whose size the file bounds: settings that ask for gigabytes (hidden widths of 32,768)
    are one line before anything is allocated."""
    probe_settings = {**settings, "weights": "none"} if "weights" in settings else settings
    try:
        with torch.device("meta"):
            probe = cls(**probe_settings)
    except Exception as err:  # noqa: BLE001 - settings the class refuses are the checkpoint's problem
        raise CheckpointError(f"{path} holds settings its model refuses ({first_line(err, 150)})") from None
    problem = state_mismatch(weights, probe)
    if problem is not None:
        raise CheckpointError(
            f"{path} holds weights that do not fit its own settings ({problem}): pass a checkpoint written by this "
            "app's fit"
        )


def earlier_normalisation(model: dict[str, Any], data: dict[str, Any]) -> None:
    """A transfer model's checkpoint from before 0.2 holds its backbone's normalisation (or the user's) in the data
    settings, where the command line put it: it becomes the model's, so the checkpoint keeps its numbers."""
    if (
        "backbone" in model
        and "input_mean" not in model
        and data.get("mean") is not None
        and data.get("std") is not None
    ):
        model["input_mean"], model["input_std"] = data["mean"], data["std"]


def data_settings_for(run: SavedRun) -> dict[str, Any]:
    """The checkpoint's data settings a new process may reuse (its split, image size, normalisation, ...)."""
    return {k: v for k, v in run.data_settings.items() if k not in ENVIRONMENT_KEYS}
