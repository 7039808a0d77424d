"""The app's callbacks and its checkpoint writer, each a section of the config.

Each section shows in ``--print_config``, is tuned by a flag or YAML (``--tensorboard_views.every_s 30``),
can be swapped for another subclass, and is switched off with ``null`` (``--tensorboard_views null``).
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, ProgressBar
from lightning.pytorch.plugins.io import CheckpointIO

from lightning_app.callbacks.epoch_timer import EpochTimer
from lightning_app.callbacks.metrics_files import MetricsJSON
from lightning_app.callbacks.nan_check import StopOnNonFiniteLoss
from lightning_app.callbacks.prediction_writer import PredictionWriter
from lightning_app.callbacks.progress_bar import ThrottledProgressBar
from lightning_app.callbacks.tensorboard_views import LearningRate, TensorBoardViews
from lightning_app.engine.fast_path import FastPath
from lightning_app.runs.checkpoint_writer import AtomicCheckpointIO


def class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def section(base: type, default: type, help: str, **init_args: Any) -> dict[str, Any]:
    value = {"class_path": class_path(default)}
    if init_args:
        value["init_args"] = init_args
    return {"base": base, "default": value, "help": help}


# name -> the base class a user may swap in, its default, and what it does
CALLBACKS: dict[str, dict[str, Any]] = {
    "fast_path": section(
        FastPath, FastPath, "loads 64 optimizer steps' samples at once and steps without per-step hooks (null: off)"
    ),
    "checkpoint": section(
        ModelCheckpoint,
        ModelCheckpoint,
        "keeps the best checkpoint by val/acc (checkpoints/epoch=E-val_acc=A.ckpt)",
        monitor="val/acc",
        mode="max",
        filename="epoch={epoch}-val_acc={val/acc:.4f}",
        auto_insert_metric_name=False,
    ),
    # Lightning 2.6 writes `save_last` only when a top-k file is written at the same step, which makes last.ckpt
    # a copy of the best; this second ModelCheckpoint saves the latest state after every validation
    "last_checkpoint": section(
        ModelCheckpoint,
        ModelCheckpoint,
        "keeps checkpoints/last.ckpt, the state after every validation, to resume from",
        filename="last",
        monitor=None,
        save_top_k=1,
        enable_version_counter=False,
    ),
    "metrics_json": section(MetricsJSON, MetricsJSON, "writes the latest metrics to <run>/metrics.json"),
    "tensorboard_views": section(
        TensorBoardViews, TensorBoardViews, "prediction pictures, confusion matrix, curves and hparams in TensorBoard"
    ),
    "learning_rate": section(LearningRateMonitor, LearningRate, "logs the learning rate"),
    "prediction_writer": section(PredictionWriter, PredictionWriter, "predict: a CSV and view_classify pictures"),
    "epoch_timer": section(EpochTimer, EpochTimer, "logs time/epoch_s"),
    "nan_check": section(StopOnNonFiniteLoss, StopOnNonFiniteLoss, "stops on a NaN/inf loss, naming the step"),
    "progress_bar": section(
        ProgressBar, ThrottledProgressBar, "the progress bar (off with --trainer.enable_progress_bar false)"
    ),
}
# the Trainer plugin that writes checkpoints; null falls back to Lightning's own writer
CHECKPOINT_IO = {"checkpoint_io": section(CheckpointIO, AtomicCheckpointIO, "writes checkpoints atomically")}
