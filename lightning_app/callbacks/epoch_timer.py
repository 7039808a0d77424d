"""The seconds of each training epoch, in TensorBoard and metrics.csv beside the losses."""

from __future__ import annotations

import time

from lightning.pytorch import Callback, LightningModule, Trainer


class EpochTimer(Callback):
    """Logs ``time/epoch_s``: wall seconds of each training epoch, its validation included."""

    fast_path_safe = True  # acts per epoch, or reads loaded batches as they are (contracts.FastPathSafe)

    def __init__(self) -> None:
        self._start = 0.0

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        pl_module.log("time/epoch_s", time.perf_counter() - self._start, on_step=False, on_epoch=True)
