"""Guards for long runs: checkpoints written atomically, and a stop with a clear message on a NaN/inf loss."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.plugins.io import TorchCheckpointIO


class TrainingError(Exception):
    """Training cannot go on (e.g. the loss is no longer finite); the message says what to do."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file beside it, syncs it, then renames it into place.

    A run killed while saving leaves the previous ``last.ckpt`` whole; there is never a half-written one.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with tmp.open("wb") as handle:
                torch.save(checkpoint, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


class StopOnNonFiniteLoss(Callback):
    """Stops training when the loss becomes NaN or infinite, naming the first bad step.

    The check keeps a flag on the device (no host sync per step) and reads it every ``check_every`` steps
    and before each validation, so the checkpoints written after validation are never made from a broken
    model: the last good checkpoint stays.
    """

    def __init__(self, check_every: int = 50) -> None:
        self.check_every = check_every
        self._first_bad: torch.Tensor | None = None

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        if self._first_bad is None:
            self._first_bad = torch.full((), -1, dtype=torch.long, device=loss.device)
        step = torch.full((), trainer.global_step - 1, dtype=torch.long, device=loss.device)  # the step just done
        bad = ~torch.isfinite(loss.detach()) & (self._first_bad < 0)
        self._first_bad = torch.where(bad, step, self._first_bad)
        if (batch_idx + 1) % self.check_every == 0:
            self._check(trainer)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == "fit":
            self._check(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._check(trainer)

    def _check(self, trainer: Trainer) -> None:
        if self._first_bad is None or int(self._first_bad) < 0:
            return
        step = int(self._first_bad)
        saved = [Path(p) for cb in trainer.checkpoint_callbacks for p in (cb.last_model_path, cb.best_model_path) if p]
        saved = [p for p in saved if p.is_file()]
        last = str(max(saved, key=lambda p: p.stat().st_mtime)) if saved else ""
        kept = f"; the last good checkpoint is {last}" if last else ""
        raise TrainingError(
            f"the training loss became NaN or infinite at step {step} (epoch {trainer.current_epoch}): "
            f"lower --model.lr or check the data{kept}"
        )
