"""Callbacks for cross-cutting work: final metrics as JSON, and a short summary at the end of a run."""

from __future__ import annotations

import json
import math
from pathlib import Path

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only


def run_dir(trainer: Trainer) -> Path | None:
    """The folder of this run (the logger's version folder), or None without a logger."""
    return Path(trainer.log_dir) if trainer.logger is not None and trainer.log_dir else None


def monitoring_checkpoint(trainer: Trainer) -> ModelCheckpoint | None:
    """The ModelCheckpoint that keeps the best model by a monitored metric (not the one keeping ``last``)."""
    return next((cb for cb in trainer.checkpoint_callbacks if isinstance(cb, ModelCheckpoint) and cb.monitor), None)


def last_checkpoint() -> ModelCheckpoint:
    """Keeps ``checkpoints/last.ckpt``: the state after every validation, to resume from.

    Lightning 2.6 writes ``save_last`` only when a top-k file is written at the same step, which makes
    ``last.ckpt`` a copy of the best; this second callback saves the latest state every time.
    """
    return ModelCheckpoint(filename="last", monitor=None, save_top_k=1, enable_version_counter=False)


class MetricsJSON(Callback):
    """Writes the latest epoch metrics to ``<run>/metrics.json`` after validation, fit and test.

    Keys are the logged names (``val/acc``, ``test/acc``, ...); later stages update earlier values, so after
    ``fit`` the file holds the final train/val metrics and the test metrics of the best checkpoint.
    """

    filename = "metrics.json"

    @rank_zero_only
    def _write(self, trainer: Trainer) -> None:
        folder = run_dir(trainer)
        if folder is None:
            return
        path = folder / self.filename
        metrics = json.loads(path.read_text()) if path.exists() else {}
        for key, value in trainer.callback_metrics.items():
            number = float(value)
            metrics[key] = number if math.isfinite(number) else str(number)
        metrics["epoch"] = trainer.current_epoch
        metrics["global_step"] = trainer.global_step
        ckpt = monitoring_checkpoint(trainer)
        if ckpt is not None and ckpt.best_model_path:
            metrics["best_model_path"] = ckpt.best_model_path
            if ckpt.best_model_score is not None:
                metrics[f"best/{ckpt.monitor}"] = float(ckpt.best_model_score)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        tmp.replace(path)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self._write(trainer)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._write(trainer)

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._write(trainer)
