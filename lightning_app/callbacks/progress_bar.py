"""A progress bar that redraws by the clock, not by the step, so small models are not slowed down."""

from __future__ import annotations

import time

from lightning.pytorch.callbacks import RichProgressBar


class ThrottledProgressBar(RichProgressBar):
    """Lightning's RichProgressBar, redrawn at most every ``interval`` seconds and at the end of each loop.

    Redrawing on every step costs a noticeable share of an epoch of the lesson's small MLP. On the ranks
    whose bar is disabled (all but rank 0 under DDP) it does nothing, as Lightning's own bar does.
    """

    fast_path_safe = True  # acts per epoch, or reads loaded batches as they are (contracts.FastPathSafe)

    def __init__(self, interval: float = 0.5) -> None:
        super().__init__(leave=True)
        self.interval = interval
        self._last = 0.0

    def get_metrics(self, trainer, pl_module) -> dict:
        """The logged metrics, without the logger's version number (the run folder is printed at the end)."""
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics

    def _due(self, batch_idx: int, total: int | float) -> bool:
        now = time.monotonic()
        if batch_idx + 1 >= total or now - self._last >= self.interval:
            self._last = now
            return True
        return False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self.is_disabled and self._due(batch_idx, self.total_train_batches):
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if not self.is_disabled and self._due(batch_idx, self.total_val_batches_current_dataloader):
            super().on_validation_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if not self.is_disabled and self._due(batch_idx, self.total_test_batches_current_dataloader):
            super().on_test_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if not self.is_disabled and self._due(batch_idx, self.total_predict_batches_current_dataloader):
            super().on_predict_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)
