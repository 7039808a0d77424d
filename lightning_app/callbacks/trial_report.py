"""A sweep's trial, told each validation's metric: Optuna prunes a poor trial there (``sweep``)."""

from __future__ import annotations

import math
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer


class TrialReport(Callback):
    """Reports ``metric`` after each validation to an Optuna ``trial`` (step: the epoch) and raises Optuna's
    ``TrialPruned`` when the study's pruner says the trial is behind; keeps the best value for the objective.

    Optuna's own Lightning callback (optuna-integration) does the same; this one also declares that it acts per
    validation, so the app's fast path stays on (``contracts.FastPathSafe``).
    """

    fast_path_safe = True

    def __init__(self, trial: Any, metric: str = "val/acc", maximize: bool = True) -> None:
        self.trial, self.metric, self.maximize = trial, metric, maximize
        self.best: float | None = None

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or self.metric not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.metric])
        if math.isfinite(value) and (self.best is None or (value > self.best) == self.maximize):
            self.best = value
        self.trial.report(value, step=trainer.current_epoch)
        if self.trial.should_prune():
            import optuna

            raise optuna.TrialPruned(f"{self.metric} {value:.4f} at epoch {trainer.current_epoch}")
