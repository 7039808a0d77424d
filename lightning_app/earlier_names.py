"""Names of 0.1.0 (before lightning_app/ was grouped into folders) that saved run configs and scripts still use.

A run's ``config.yaml`` names its callbacks by import path (``lightning_app.fast_path.FastPath``), and scripts
import them (``from lightning_app.fast_path import FastPath``). Each old module is served here as a module
whose names lead to their new homes, so both keep working; new configs are written with the new paths.
Python's import system offers this as a public extension point (``sys.meta_path``).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType
from typing import Any

# old module -> {name: new module}
MOVED: dict[str, dict[str, str]] = {
    "lightning_app.fast_path": {"FastPath": "lightning_app.engine.fast_path"},
    "lightning_app.feature_cache": {"FeatureCache": "lightning_app.engine.feature_cache"},
    "lightning_app.finetuning": {"StagedFinetuning": "lightning_app.callbacks.staged_finetuning"},
    "lightning_app.tensorboard": {
        "TensorBoardViews": "lightning_app.callbacks.tensorboard_views",
        "LearningRate": "lightning_app.callbacks.tensorboard_views",
    },
    "lightning_app.predictions": {"PredictionWriter": "lightning_app.callbacks.prediction_writer"},
    "lightning_app.progress": {"ThrottledProgressBar": "lightning_app.callbacks.progress_bar"},
    "lightning_app.safety": {
        "StopOnNonFiniteLoss": "lightning_app.callbacks.nan_check",
        "AtomicCheckpointIO": "lightning_app.runs.checkpoint_writer",
        "TrainingError": "lightning_app.errors",
    },
    "lightning_app.trainer": {"AppTrainer": "lightning_app.toolkit.app_trainer"},
    "lightning_app.checkpoints": {"CheckpointError": "lightning_app.errors"},
}
# names of a package that stands where an old module of the same name stood
MOVED_FROM_PACKAGE: dict[str, dict[str, str]] = {
    "lightning_app.callbacks": {"FeatureCache": "lightning_app.engine.feature_cache"},
}


def resolve(old_module: str, name: str) -> Any:
    """The object an old ``old_module.name`` now is; AttributeError when it never was one."""
    table = MOVED.get(old_module) or MOVED_FROM_PACKAGE.get(old_module) or {}
    if name not in table:
        raise AttributeError(f"module {old_module!r} has no attribute {name!r}")
    return getattr(importlib.import_module(table[name]), name)


class _OldModule(ModuleType):
    def __getattr__(self, name: str) -> Any:
        return resolve(self.__name__, name)


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = _OldModule(spec.name, f"0.1.0's {spec.name}: see lightning_app/earlier_names.py")
        module.__all__ = sorted(MOVED[spec.name])
        return module

    def exec_module(self, module: ModuleType) -> None:
        pass


def install() -> None:
    """Serve the old modules (once per process)."""
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.append(_Finder())
