"""A stop with a clear message on a NaN/inf loss, before a broken model is checkpointed."""

from __future__ import annotations

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from lightning_app.errors import TrainingError
from lightning_app.runs.storage import location


class StopOnNonFiniteLoss(Callback):
    """Stops training when the loss becomes NaN or infinite, naming the first bad step.

    Each step's loss is copied into a small buffer on the device (one copy, no host sync per step); the
    buffer is read every ``check_every`` steps and before each validation, so the checkpoints written after
    validation are never made from a broken model: the last good checkpoint stays.
    """

    fast_path_safe = True  # acts per epoch, or reads loaded batches as they are (contracts.FastPathSafe)

    def __init__(self, check_every: int = 50) -> None:
        self.check_every = check_every
        self._losses: torch.Tensor | None = None
        self._steps: list[int] = []  # the global step of each buffered loss

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx) -> None:
        """Buffer the batch's loss, or each step's on the fast path (``step_losses``: several per batch)."""
        losses = outputs.get("step_losses") if isinstance(outputs, dict) else None
        if losses is None:
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            if loss is None:
                return
            losses = loss.detach().reshape(1)
        if len(self._steps) + len(losses) > self.check_every:
            self._check(trainer)
        size = max(self.check_every, len(losses))
        if self._losses is None or self._losses.device != losses.device or len(self._losses) < size:
            self._losses = torch.zeros(size, device=losses.device)
        self._losses[len(self._steps) : len(self._steps) + len(losses)].copy_(losses)
        self._steps += range(trainer.global_step - len(losses), trainer.global_step)  # the steps just done
        if len(self._steps) >= self.check_every:
            self._check(trainer)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == "fit":
            self._check(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._check(trainer)

    def _check(self, trainer: Trainer) -> None:
        if self._losses is None or not self._steps:
            return
        bad = (~torch.isfinite(self._losses[: len(self._steps)])).nonzero()  # the one read of the device
        steps, self._steps = self._steps, []
        if not len(bad):
            return
        step = steps[int(bad[0])]
        saved = [
            location(p) for cb in trainer.checkpoint_callbacks for p in (cb.last_model_path, cb.best_model_path) if p
        ]
        saved = [p for p in saved if p.is_file()]
        last = str(max(saved, key=lambda p: p.stat().st_mtime)) if saved else ""
        kept = f"; the last good checkpoint is {last}" if last else ""
        raise TrainingError(
            f"the training loss became NaN or infinite at step {step} (epoch {trainer.current_epoch}): "
            f"lower --model.lr or check the data{kept}"
        )
