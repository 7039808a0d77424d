"""The lines a run ends with: its accuracy, the best checkpoint, the run folder and the TensorBoard command."""

from __future__ import annotations

import re
from pathlib import Path

from lightning.pytorch import Trainer
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from lightning_app.runs.checkpoints import monitoring_checkpoint
from lightning_app.runs.run_folders import run_dir


def summary(trainer: Trainer, best: str = "") -> str:
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    lines = []
    stage = "test" if "test/acc" in metrics else "val"
    if f"{stage}/acc" in metrics:
        lines.append(f"{stage}/acc: {metrics[f'{stage}/acc']:.4f}  ({stage}/loss {metrics[f'{stage}/loss']:.4f})")
    ckpt = monitoring_checkpoint(trainer)
    if best and ckpt is not None and ckpt.best_model_score is not None:
        epoch = re.search(r"epoch=(\d+)", Path(best).name)
        at = f" at epoch {epoch.group(1)}" if epoch else ""
        lines.append(f"best {ckpt.monitor}: {float(ckpt.best_model_score):.4f}{at}")
    if best:
        lines.append(f"best checkpoint: {best}")
    folder = run_dir(trainer)
    if folder is not None:
        lines.append(f"run folder: {folder}")
        if str(folder).startswith("memory:"):
            lines.append(
                "note: memory:// lives in this process only: the run folder and its checkpoints vanish when it "
                "ends; pass a local folder or a store (s3://...) to keep them"
            )
    for logger in trainer.loggers:  # what each logger wrote, and how to look at it
        if isinstance(logger, TensorBoardLogger):
            lines.append(f"TensorBoard: tensorboard --logdir {Path(logger.log_dir).parent} --host 127.0.0.1")
        elif isinstance(logger, CSVLogger):
            lines.append(f"CSVLogger: {Path(logger.log_dir) / 'metrics.csv'}")
        else:
            lines.append(f"{type(logger).__name__}: {getattr(logger, 'log_dir', None) or 'see its own dashboard'}")
    return "\n".join(lines)
